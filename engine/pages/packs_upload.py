"""Uploading a changed rule pack from the browser: files, a .zip of the pack folder, or one file edited in place.

* ``/packs/upload`` — rule files (``.yaml``), decision tables (``.csv``/``.xlsx``) or a ``.zip`` of the
  pack folder; by default the files uploaded replace those of the same name in the pack in use and the
  others are kept (untick it to upload a complete pack);
* ``/packs/edit?file=NAME`` — one file of the pack in use in a text box; the other files are kept.

A pack that does not load comes back with every problem (file, line, rule, field) and the failing
file's text in the edit box, the other files carried in a hidden field: nothing typed or uploaded is lost.
"""

from __future__ import annotations

import base64
import io
import json
import zipfile
from pathlib import PurePosixPath
from typing import Any

from fastapi import FastAPI, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse, Response
from starlette.datastructures import UploadFile

from engine.app import App
from engine.auth.principal import AuthError, Forbidden, NotAuthenticated, NotFound
from engine.pack.diff import FIELD_CN
from engine.pack.errors import PackError, PackProblem
from engine.pack.rollout import SOURCE_SUFFIXES
from engine.pages.render import PageSession, PageWho, page, redirect
from engine.service import packs_ops

TEXT_SUFFIXES = {".yaml", ".yml", ".csv"}


class UploadProblem(ValueError):
    """An upload that cannot be read as pack files (a bad zip, a file of another kind); said in Chinese."""


def _app(request: Request) -> App:
    return request.app.state.partyrules  # type: ignore[no-any-return]


def read_zip(name: str, data: bytes) -> dict[str, bytes]:
    """The pack files inside a .zip, paths relative to the pack folder (one enclosing folder is dropped)."""
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
    except zipfile.BadZipFile as exc:
        raise UploadProblem(f"{name} 不是有效的 zip 压缩包：{exc}") from exc
    members = [
        i
        for i in archive.infolist()
        if not i.is_dir()
        and PurePosixPath(i.filename).suffix.lower() in SOURCE_SUFFIXES
        and not any(p.startswith((".", "__MACOSX")) for p in PurePosixPath(i.filename).parts)
    ]
    if not members:
        raise UploadProblem(f"{name} 中没有规则文件（{'、'.join(sorted(SOURCE_SUFFIXES))}）")
    if len(members) > packs_ops.MAX_FILES or sum(i.file_size for i in members) > packs_ops.MAX_BYTES:
        raise UploadProblem(f"{name} 解压后超过 {packs_ops.MAX_FILES} 个文件或 {packs_ops.MAX_BYTES:,} 字节")
    paths = [PurePosixPath(i.filename) for i in members]
    tops = {p.parts[0] for p in paths}
    strip = len(tops) == 1 and all(len(p.parts) > 1 for p in paths)
    out = {}
    for info, path in zip(members, paths, strict=True):
        inner = PurePosixPath(*path.parts[1:]) if strip else path
        out[str(inner)] = archive.read(info)
    return out


async def _uploaded(form: Any) -> dict[str, bytes]:
    files: dict[str, bytes] = {}
    for item in form.getlist("files"):
        if not isinstance(item, UploadFile) or not item.filename:
            continue
        name = PurePosixPath(item.filename.replace("\\", "/")).name
        data = await item.read()
        if name.lower().endswith(".zip"):
            files.update(read_zip(name, data))
        elif PurePosixPath(name).suffix.lower() in SOURCE_SUFFIXES:
            files[name] = data
        else:
            raise UploadProblem(f"{name}：只能上传规则文件 .yaml、决策表 .csv/.xlsx，或规则包目录的 .zip")
    if not files:
        raise UploadProblem("请选择要上传的文件")
    return files


def pack_carry(files: dict[str, bytes]) -> str:
    """Files carried through a form round trip (a hidden field): base64 of a JSON name -> base64 map."""
    encoded = {n: base64.b64encode(d).decode("ascii") for n, d in sorted(files.items())}
    return base64.b64encode(json.dumps(encoded).encode("utf-8")).decode("ascii")


def unpack_carry(value: str) -> dict[str, bytes]:
    try:
        encoded = json.loads(base64.b64decode(value, validate=True))
        return {str(n): base64.b64decode(d, validate=True) for n, d in encoded.items()}
    except (ValueError, AttributeError) as exc:
        raise UploadProblem("表单中携带的其余文件已损坏，请重新上传") from exc


def problem_rows(problems: list[PackProblem]) -> list[dict[str, Any]]:
    """Each loader problem for the page: file, line, rule, the field with its Chinese name, the message."""
    rows = []
    for p in problems:
        head = p.field.split(".", 1)[0].split("[", 1)[0]
        label = FIELD_CN.get(head)
        rows.append(
            {
                "file": p.file,
                "line": p.line or "",
                "rule": p.rule or "",
                "field": f"{label}（{p.field}）" if label and p.field else p.field,
                "message": p.message,
                "suggestion": p.suggestion if p.suggestion and p.suggestion not in p.message else "",
                "text": f"文件 {p.file}" + (f" 第 {p.line} 行" if p.line else ""),
            }
        )
    return rows


def _decode(name: str, data: bytes) -> str | None:
    if PurePosixPath(name).suffix.lower() not in TEXT_SUFFIXES:
        return None
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError:
        return None


def _edit_page(
    request: Request,
    who: PageSession,
    files: dict[str, bytes],
    name: str,
    text: str,
    problems: list[PackProblem] | None = None,
    error: str = "",
    carried: bool = True,
) -> HTMLResponse:
    others = {n: d for n, d in files.items() if n != name}
    return page(
        request,
        "packs_edit.html",
        who,
        status=422 if problems or error else 200,
        title=f"修改规则文件 {name}",
        name=name,
        text=text,
        carry=pack_carry(others) if carried else "",
        others=sorted(others),
        problems=problem_rows(problems or []),
        error=error,
    )


def _store(request: Request, who: PageSession, files: dict[str, bytes]) -> Response:
    done = packs_ops.upload_bytes(_app(request), who.principal, files, str(request.state.request_id))
    return redirect(
        f"/packs/{done['hash']}",
        ok=f"已上传规则包 {done['hash']}（{done['rules']} 条规则），请查看差异并回测，再请另一位规则管理员批准",
    )


def register(api: FastAPI) -> None:
    @api.get("/packs/upload", include_in_schema=False, response_class=HTMLResponse)
    def upload_form(request: Request, who: PageWho) -> HTMLResponse:
        who.principal.require("pack.write")
        names = sorted(packs_ops.sources_in_use(_app(request), who.principal))
        return page(request, "packs_upload.html", who, title="上传规则包", names=names, merge=True)

    @api.post("/packs/upload", include_in_schema=False)
    async def upload_post(request: Request, who: PageWho) -> Response:
        app = _app(request)
        form = await request.form()
        merge = form.get("merge") == "1"
        names = sorted(await run_in_threadpool(packs_ops.sources_in_use, app, who.principal))
        try:
            files = await _uploaded(form)
        except UploadProblem as exc:
            return page(
                request, "packs_upload.html", who, status=422, title="上传规则包", names=names, merge=merge, error=str(exc)
            )
        if merge:
            base = await run_in_threadpool(packs_ops.sources_in_use, app, who.principal)
            files = {**base, **files}
        try:
            return await run_in_threadpool(_store, request, who, files)
        except PackError as exc:
            failing = next((p.file for p in exc.problems if p.file in files and _decode(p.file, files[p.file])), None)
            if failing is None:  # e.g. a broken .xlsx table: nothing to edit here, the problems are listed
                return page(
                    request,
                    "packs_upload.html",
                    who,
                    status=422,
                    title="上传规则包",
                    names=names,
                    merge=merge,
                    problems=problem_rows(exc.problems),
                )
            return _edit_page(request, who, files, failing, _decode(failing, files[failing]) or "", exc.problems)
        except AuthError as exc:
            if isinstance(exc, NotAuthenticated | Forbidden | NotFound):
                raise
            return page(
                request, "packs_upload.html", who, status=422, title="上传规则包", names=names, merge=merge, error=str(exc)
            )

    @api.get("/packs/edit", include_in_schema=False, response_class=HTMLResponse)
    def edit_form(request: Request, who: PageWho, file: str = "") -> HTMLResponse:
        who.principal.require("pack.write")
        files = packs_ops.sources_in_use(_app(request), who.principal)
        text = _decode(file, files[file]) if file in files else None
        if text is None:
            raise NotFound(f"当前生效的规则包中没有可在线修改的文本文件 {file!r}")
        return _edit_page(request, who, files, file, text, carried=False)

    @api.post("/packs/edit", include_in_schema=False)
    async def edit_post(request: Request, who: PageWho) -> Response:
        form = await request.form()
        name = str(form.get("name") or "")
        text = str(form.get("text") or "").replace("\r\n", "\n")
        carry = str(form.get("carry") or "")
        try:
            if carry:
                files = unpack_carry(carry)
            else:
                files = await run_in_threadpool(packs_ops.sources_in_use, _app(request), who.principal)
                files.pop(name, None)
        except UploadProblem as exc:
            return _edit_page(request, who, {}, name, text, error=str(exc), carried=False)
        files[name] = text.encode("utf-8")
        try:
            return await run_in_threadpool(_store, request, who, files)
        except PackError as exc:
            return _edit_page(request, who, files, name, text, exc.problems)
        except AuthError as exc:
            if isinstance(exc, NotAuthenticated | Forbidden | NotFound):
                raise
            return _edit_page(request, who, files, name, text, error=str(exc))
