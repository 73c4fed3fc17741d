"""Reports: compliance by org and by rule, the trend, and the rectification ledger (整改台账).

:func:`engine.report.data.build_report` computes a :class:`engine.report.model.Report`
from the stored violations and check runs; ``render_text`` (table, Markdown),
``render_xlsx`` and ``render_html`` draw it.
"""
