"""The library under the secretary's pages: where an org stands, the roster on a day, minutes read from a
.docx, and rectification reports with evidence files (size limits, scope, SHA-256, audit)."""

from __future__ import annotations

import datetime as dt
import hashlib
import io
import shutil

import pytest
import sqlalchemy as sa
from service_fixtures import ROOT

from engine.app import build_app
from engine.audit.verify import verify
from engine.auth.accounts import principal_for
from engine.auth.principal import Forbidden, NotFound
from engine.service import rectify_ops, violations_ops
from engine.service.minutes_docx import MinutesFileError, parse_minutes_docx, parse_minutes_lines
from engine.service.rectify_ops import EvidenceFile, RectifyError, report_rectification
from engine.service.roster_ops import org_view
from engine.service.standing_ops import org_standing

DUES_LATE = "dues.monthly.paid"


@pytest.fixture
def app(pages_template, tmp_path):  # type: ignore[no-untyped-def]
    db = tmp_path / "copy.db"
    shutil.copy(pages_template, db)
    served = build_app(str(db))
    yield served
    served.db.dispose()


def _late_dues(app, who):  # type: ignore[no-untyped-def]
    rows = violations_ops.list_violations(app, who, rule=DUES_LATE, org="b1")
    assert len(rows) == 1
    return rows[0]


def test_standing_counts_up_to_today_and_days_left_in_each_period(app):
    who = principal_for(app.db, "secretary_b1")
    got = {(r.rule, r.org): r for r in org_standing(app, who, "b1", dt.date(2017, 6, 19))}
    assembly = got[("branch.member_assembly.quarterly", "b1")]
    assert (assembly.held, assembly.at_least, assembly.days_left, assembly.done) == (0, 1, 11, False)
    assert assembly.text == "本季度尚未召开支部党员大会，距季度结束还有11天"
    # the assembly of 24 June counts once it has been held
    after = {(r.rule, r.org): r for r in org_standing(app, who, "b1", dt.date(2017, 6, 30))}
    assert (
        after[("branch.member_assembly.quarterly", "b1")].text == "本季度已召开支部党员大会1次（要求至少1次）"
    )
    assert after[("branch.member_assembly.quarterly", "b1")].days_left == 0
    assert got[("branch.theme_day.monthly", "b1")].text == "本月已开展主题党日1次（要求至少1次）"
    assert {org for _rule, org in got} == {"b1", "b1-g1", "b1-g2"}  # the branch and its 党小组
    with pytest.raises(NotFound):
        org_standing(app, principal_for(app.db, "secretary_b2"), "b1", dt.date(2017, 6, 19))


def test_roster_on_a_day_is_the_party_groups_members_for_its_own_meetings(app):
    view = org_view(app, ROOT, "pg")
    people = view.people(dt.date(2017, 6, 16), "party_group_meeting")
    assert [p.name for p in people] == ["陆娜洋", "汤军", "覃丹", "邵祥坤", "田晓芳", "向雪", "彭振"]
    b1 = org_view(app, ROOT, "b1").people(dt.date(2017, 6, 16))
    assert len(b1) == 14 and b1[0].label == "正式党员 · 支部书记 · 支部委员"
    with pytest.raises(NotFound):
        org_view(app, principal_for(app.db, "secretary_b2"), "b1")


def test_minutes_lines_labels_continue_and_normalise_the_time():
    parsed = parse_minutes_lines(
        [
            "会议时间：2017年6月16日 9:00—10:30",
            "会议内容：第一段",
            "第二段",
            "会议成效：清单三项",
            "无标签的结尾",
        ]
    )
    assert parsed.date == dt.date(2017, 6, 16)
    assert parsed.fields == {
        "time": "09:00-10:30",
        "content": "第一段\n第二段",
        "outcome": "清单三项\n无标签的结尾",
    }


def test_a_docx_table_is_read_and_a_non_docx_is_refused_in_chinese():
    import docx

    document = docx.Document()
    table = document.add_table(rows=2, cols=2)
    table.rows[0].cells[0].text, table.rows[0].cells[1].text = "地点", "三楼会议室"
    table.rows[1].cells[0].text, table.rows[1].cells[1].text = "记录人：", "李兴林"
    out = io.BytesIO()
    document.save(out)
    assert parse_minutes_docx(out.getvalue()).fields == {"place": "三楼会议室", "recorder": "李兴林"}
    with pytest.raises(MinutesFileError, match="不是 .docx 文件"):
        parse_minutes_docx(b"plain text", "a.txt")


def test_a_secretary_reports_rectification_with_evidence_stored_with_its_sha256_and_audited(app):
    who = principal_for(app.db, "secretary_b1")
    v = _late_dues(app, who)
    data = b"receipt " * 100
    done = report_rectification(
        app, who, v.key, "已补缴", [EvidenceFile("../收据?.pdf", "application/pdf", data)]
    )
    assert (done.change.from_status, done.change.to_status) == ("open", "rectifying")
    [e] = done.evidence
    assert (e.filename, e.size, e.sha256) == ("收据_.pdf", len(data), hashlib.sha256(data).hexdigest())
    assert rectify_ops.list_evidence(app, who, v.key) == [e]
    assert rectify_ops.read_evidence(app, who, e.id) == (e, data)
    _v, events = violations_ops.show_violation(app, who, v.key)
    assert events[-1].action == "report" and e.sha256 in (events[-1].note or "")
    with app.db.connect() as conn:
        detail = conn.execute(
            sa.text("SELECT detail FROM audit_log WHERE action = 'violation.report' AND target = :k"),
            {"k": v.key},
        ).scalar_one()
    assert e.sha256 in detail
    assert verify(app.db).ok
    # the inspector resolves it afterwards; the secretary still may not
    inspector = principal_for(app.db, "inspector_b1")
    with pytest.raises(Forbidden):
        violations_ops.act(app, who, v.key, "resolve", evidence="x")
    assert violations_ops.act(app, inspector, v.key, "resolve", evidence="收据已核").to_status == "resolved"
    with pytest.raises(Exception, match="rectifying"):
        report_rectification(app, who, v.key, "再报一次")  # a resolved violation takes no report


def test_rectification_limits_and_scope(app):
    who = principal_for(app.db, "secretary_b1")
    v = _late_dues(app, who)
    with pytest.raises(RectifyError, match="请填写整改说明"):
        report_rectification(app, who, v.key, "  ")
    big = EvidenceFile("big.pdf", "application/pdf", b"x" * (rectify_ops.MAX_FILE_BYTES + 1))
    with pytest.raises(RectifyError, match="超过每个文件 10 MB 的上限"):
        report_rectification(app, who, v.key, "已补缴", [big])
    with pytest.raises(RectifyError, match="空文件"):
        report_rectification(app, who, v.key, "已补缴", [EvidenceFile("e.pdf", "", b"")])
    many = [EvidenceFile(f"{i}.txt", "text/plain", b"x") for i in range(rectify_ops.MAX_FILES + 1)]
    with pytest.raises(RectifyError, match="最多 10 个文件"):
        report_rectification(app, who, v.key, "已补缴", many)
    with pytest.raises(NotFound):
        report_rectification(app, principal_for(app.db, "secretary_b2"), v.key, "不是我的支部")
    with pytest.raises(Forbidden):
        report_rectification(app, principal_for(app.db, "rule_admin"), v.key, "无权")
    assert violations_ops.show_violation(app, who, v.key)[0].status == "open"  # nothing was recorded
    with app.db.connect() as conn:
        assert conn.execute(sa.text("SELECT count(*) FROM rectification_evidence")).scalar_one() == 0


def test_the_json_api_takes_a_rectification_report_with_files(pages_template, tmp_path):
    from service_fixtures import serve_copy

    served = serve_copy(pages_template, tmp_path)
    key = served.client.get(
        "/api/violations", params={"rule": DUES_LATE, "org": "b1"}, headers=served.as_("secretary_b1")
    ).json()[0]["key"]
    data = b"%PDF-1.4 receipt"
    response = served.client.post(
        "/api/rectifications",
        data={"key": key, "text": "已补缴"},
        files=[("files", ("收据.pdf", data, "application/pdf"))],
        headers=served.as_("secretary_b1"),
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert (body["from"], body["to"]) == ("open", "rectifying")
    assert body["evidence"][0]["sha256"] == hashlib.sha256(data).hexdigest()
    listed = served.client.get(
        "/api/rectifications/evidence", params={"key": key}, headers=served.as_("inspector_b1")
    )
    assert [e["sha256"] for e in listed.json()] == [body["evidence"][0]["sha256"]]
    other = served.client.post(
        "/api/rectifications", data={"key": key, "text": "x"}, headers=served.as_("secretary_b2")
    )
    assert other.status_code == 404
