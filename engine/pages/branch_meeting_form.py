"""The meeting form's state: read from a stored meeting or a posted form, checked in Chinese, and turned
into a meeting fact of the interchange format (facts spec: attendees, on_leave, absent, minutes)."""

from __future__ import annotations

import datetime as dt
import secrets
from dataclasses import dataclass, field
from typing import Any

from engine.service.minutes_docx import ParsedMinutes
from engine.service.roster_ops import Person
from engine.subjects.single import MEETING_KIND_CN

KINDS_BY_ORG = {
    "party_group": ("party_group_meeting", "central_group_study", "democratic_life_meeting"),
    # a 党小组会 is recorded under its group (a record under the branch does not count for the group)
    "branch": (
        "member_assembly",
        "committee_meeting",
        "party_lecture",
        "theme_day",
        "org_life_meeting",
        "member_appraisal",
        "topic_discussion",
    ),
    "general_branch": (
        "member_assembly",
        "committee_meeting",
        "party_lecture",
        "theme_day",
        "org_life_meeting",
    ),
    "group": ("group_meeting", "theme_day"),
}
TOPICS = {
    "party_building": "党建",
    "integrity": "党风廉政",
    "ideology": "意识形态",
    "study": "理论学习",
    "appointment": "干部任免",
    "discipline": "党员处分",
}
ATTENDANCE = {"present": "出席", "leave": "请假", "absent": "缺席"}
MINUTES_FIELDS = ("time", "place", "agenda", "content", "outcome")
MAX_TEXT = 20_000


def kinds_for(org_kind: str) -> list[tuple[str, str]]:
    kinds = KINDS_BY_ORG.get(org_kind, tuple(MEETING_KIND_CN))
    return [(k, MEETING_KIND_CN[k]) for k in kinds]


def new_meeting_id(org: str) -> str:
    return f"{org}-web-{secrets.token_hex(4)}"


@dataclass
class MeetingForm:
    id: str
    org: str
    kind: str = ""
    date: str = ""
    topics: list[str] = field(default_factory=list)
    host: str = ""
    lecturer: str = ""
    recorder: str = ""
    minutes: dict[str, str] = field(default_factory=dict)  # time place agenda content outcome
    attendance: dict[str, str] = field(default_factory=dict)  # member → present | leave | absent
    reason: dict[str, str] = field(default_factory=dict)
    opinion: set[str] = field(default_factory=set)
    existing: bool = False  # a correction of a stored meeting
    errors: list[str] = field(default_factory=list)

    @classmethod
    def from_fact(cls, fact: dict[str, Any]) -> MeetingForm:
        minutes = fact.get("minutes") or {}
        form = cls(
            id=fact["id"],
            org=fact["org"],
            kind=fact["kind"],
            date=fact["date"],
            topics=list(fact.get("topics") or []),
            host=fact.get("host") or "",
            lecturer=fact.get("lecturer") or "",
            recorder=minutes.get("recorder") or "",
            minutes={k: minutes.get(k) or "" for k in MINUTES_FIELDS},
            existing=True,
        )
        for m in fact.get("attendees") or []:
            form.attendance[m] = "present"
        for m in fact.get("absent") or []:
            form.attendance[m] = "absent"
        for lv in fact.get("on_leave") or []:
            form.attendance[lv["member"]] = "leave"
            form.reason[lv["member"]] = lv.get("reason") or ""
            if lv.get("opinion_given"):
                form.opinion.add(lv["member"])
        return form

    @classmethod
    def from_post(cls, data: Any, org: str) -> MeetingForm:
        """From the posted form (a starlette FormData): every value kept as typed, for showing again."""

        def get(name: str) -> str:
            value = data.get(name)
            return value.strip() if isinstance(value, str) else ""

        form = cls(
            id=get("id") or new_meeting_id(org),
            org=org,
            kind=get("kind"),
            date=get("date"),
            topics=[t for t in data.getlist("topics") if isinstance(t, str) and t in TOPICS],
            host=get("host"),
            lecturer=get("lecturer"),
            recorder=get("recorder"),
            minutes={k: get(k) for k in MINUTES_FIELDS},
            existing=get("existing") == "1",
        )
        for name in data:
            if name.startswith("att_"):
                member = name[4:]
                form.attendance[member] = get(name)
                form.reason[member] = get(f"reason_{member}")
                if get(f"opinion_{member}"):
                    form.opinion.add(member)
        return form

    def day(self) -> dt.date | None:
        try:
            return dt.date.fromisoformat(self.date)
        except ValueError:
            return None

    def fill_from(self, parsed: ParsedMinutes, people: list[Person]) -> list[str]:
        """Fill the minutes fields (and the date, host, recorder by name) from a parsed .docx; returns the
        Chinese names of the fields filled."""
        names = {p.name: p.id for p in people}
        filled = []
        labels = {"time": "时间", "place": "地点", "agenda": "议程", "content": "内容", "outcome": "成效"}
        for key, label in labels.items():
            if parsed.fields.get(key):
                self.minutes[key] = parsed.fields[key]
                filled.append(label)
        for key, label in (("host", "主持人"), ("recorder", "记录人")):
            name = parsed.fields.get(key, "").strip()
            if name and name in names:
                setattr(self, key, names[name])
                filled.append(label)
            elif name:
                self.errors.append(f"文件中的{label}“{name}”不在该日名册中，请在下拉框中选择")
        if parsed.date is not None:
            self.date = parsed.date.isoformat()
            filled.append("日期")
        return filled

    def check(self, people: list[Person], kinds: list[str], today: dt.date) -> list[str]:
        """What is wrong with the form, in Chinese, one line per problem (empty: ready to submit)."""
        errors: list[str] = []
        if self.kind not in kinds:
            errors.append("请选择会议类型")
        day = self.day()
        if not self.date:
            errors.append("请填写会议日期")
        elif day is None:
            errors.append(f"会议日期“{self.date}”不是有效日期，请按 年-月-日 填写，例如 2017-06-15")
        elif day > today:
            errors.append(f"会议日期 {self.date} 晚于今天（{today.isoformat()}），只能录入已召开的会议")
        by_id = {p.id: p for p in people}
        present = [m for m, s in self.attendance.items() if s == "present" and m in by_id]
        if people and not present:
            errors.append("出席名单为空：请为到会人员选择“出席”")
        for p in people:
            status = self.attendance.get(p.id, "")
            if status not in ATTENDANCE:
                errors.append(f"{p.name}：请选择出席、请假或缺席")
            elif status == "leave" and not self.reason.get(p.id):
                errors.append(f"{p.name}：请假须填写请假事由")
        for key, label in (("host", "主持人"), ("recorder", "记录人"), ("lecturer", "授课人")):
            value = getattr(self, key)
            if value and value not in by_id:
                errors.append(f"{label}须从该日名册中选择")
        for key in MINUTES_FIELDS:
            if len(self.minutes.get(key, "")) > MAX_TEXT:
                errors.append(f"会议记录的{key}超过 {MAX_TEXT} 字")
        return errors

    def fact(self, people: list[Person]) -> dict[str, Any]:
        """The meeting in the interchange format (only the roster's people; empty parts left out)."""
        ids = [p.id for p in people]
        fact: dict[str, Any] = {
            "type": "meeting",
            "id": self.id,
            "org": self.org,
            "kind": self.kind,
            "date": self.date,
            "source": "网页录入",
        }
        if self.topics:
            fact["topics"] = self.topics
        if self.host:
            fact["host"] = self.host
        if self.lecturer and self.kind == "party_lecture":
            fact["lecturer"] = self.lecturer
        fact["attendees"] = [m for m in ids if self.attendance.get(m) == "present"]
        leave = [
            {"member": m, "reason": self.reason.get(m, ""), "opinion_given": m in self.opinion}
            for m in ids
            if self.attendance.get(m) == "leave"
        ]
        if leave:
            fact["on_leave"] = leave
        absent = [m for m in ids if self.attendance.get(m) == "absent"]
        if absent:
            fact["absent"] = absent
        minutes = {k: v for k, v in self.minutes.items() if v}
        if self.recorder:
            minutes["recorder"] = self.recorder
        if minutes:
            fact["minutes"] = minutes
        return fact
