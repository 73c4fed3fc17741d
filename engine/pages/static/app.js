// partyrules pages: small progressive enhancements only; every page works without this file.
(function () {
  "use strict";
  // "Select all" boxes: <input type="checkbox" data-select-all="name"> toggles every box named name.
  document.addEventListener("change", function (ev) {
    var box = ev.target;
    if (!box || !box.dataset || !box.dataset.selectAll) return;
    document.querySelectorAll('input[type=checkbox][name="' + box.dataset.selectAll + '"]').forEach(function (b) {
      b.checked = box.checked;
    });
  });
  // Buttons with data-confirm ask before submitting their form.
  document.addEventListener("click", function (ev) {
    var el = ev.target.closest ? ev.target.closest("[data-confirm]") : null;
    if (el && !window.confirm(el.dataset.confirm)) ev.preventDefault();
  });
})();
