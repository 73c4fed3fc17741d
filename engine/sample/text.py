"""Chinese text for generated facts: names, org names, minutes, petition subjects.

Shared by the sample organisation (:mod:`engine.sample`) and the synthetic
province (``bench/generate.py``).  Every function takes its own
``random.Random`` so output is deterministic for a seed.

Minutes content is built so that two meetings of different orgs stay far below
the 0.9 similarity of ``meeting.minutes.copied`` (Jaccard over character
3-gram shingles): each content opens with the org, the date and the people,
and its body draws several sentences from large pools whose slots are filled
from further pools.  :func:`jaccard` is the measure the rule uses.
"""

from __future__ import annotations

import functools
import random
import string
from collections.abc import Sequence
from datetime import date

SURNAMES = (
    "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗郑梁谢宋唐许韩冯邓曹彭曾肖田董袁潘于蒋蔡余杜叶程苏魏吕丁任沈"
    "姚卢姜崔钟谭陆汪范金石廖贾夏韦付方白邹孟熊秦邱江尹薛闫段雷侯龙史陶黎贺顾毛郝龚邵万钱严覃武戴莫孔向汤"
)
GIVEN = (
    "伟芳娜秀英敏静丽强磊军洋勇艳杰娟涛明超秀霞平刚桂英华玉兰萍红娥玲芬燕彬辉鹏飞宇浩凯健俊帆帅旭宁坤"
    "海波晨阳丹蕾琳雪倩婷颖欣悦思雨轩博文志国建新春晓东松柏林峰岩振宏德正永庆立清源泽瑞祥福兴荣锦鑫"
)

_DIGITS = "零一二三四五六七八九"

MEETING_NAMES = {
    "party_group_meeting": "党组会议",
    "central_group_study": "党组理论学习中心组学习会",
    "member_assembly": "支部党员大会",
    "committee_meeting": "支部委员会会议",
    "group_meeting": "党小组会",
    "party_lecture": "党课",
    "theme_day": "主题党日活动",
    "org_life_meeting": "专题组织生活会",
    "democratic_life_meeting": "专题民主生活会",
    "member_appraisal": "民主评议党员大会",
    "topic_discussion": "专题研讨会",
}

_DOCUMENTS = (
    "党的十九大报告",
    "《关于新形势下党内政治生活的若干准则》",
    "《中国共产党廉洁自律准则》",
    "《中国共产党纪律处分条例》",
    "《中国共产党问责条例》",
    "习近平总书记在文艺工作座谈会上的重要讲话",
    "《习近平谈治国理政》第二卷",
    "《中国共产党党内监督条例》",
    "全国宣传思想工作会议精神",
    "省第十二次党代会精神",
    "中央八项规定实施细则",
    "《关于推进“两学一做”学习教育常态化制度化的意见》",
    "习近平总书记在庆祝建军90周年大会上的讲话",
    "《党政机关厉行节约反对浪费条例》",
    "全面从严治党主体责任清单",
    "巡视整改工作方案",
    "《中国共产党党费收缴、使用和管理的规定》",
    "意识形态工作责任制实施细则",
    "中央宣传部关于加强文艺评论工作的意见",
    "习近平总书记在省部级主要领导干部专题研讨班上的讲话",
    "《党章》第二章",
    "中央纪委第七次全会公报",
    "省纪委关于违反八项规定精神问题的通报",
    "十八届六中全会精神",
)
_WORK = (
    "文艺创作生产",
    "协会会员服务",
    "基层文艺志愿服务",
    "文艺评论阵地建设",
    "机关作风建设",
    "财务管理规范化",
    "党员发展工作",
    "网络文艺引导",
    "重点文艺项目扶持",
    "文艺人才培养",
    "文化惠民演出",
    "对外文化交流",
    "信访维稳",
    "档案管理",
    "精准扶贫结对帮扶",
    "文明单位创建",
    "意识形态阵地管理",
    "经费审计整改",
)
_ACTIONS = (
    "逐条对照检查",
    "制定整改台账",
    "明确责任人和完成时限",
    "建立月度通报制度",
    "开展专项督查",
    "纳入年度考核",
    "形成问题清单",
    "细化任务分工",
    "组织集中学习研讨",
    "开展谈心谈话",
    "落实一岗双责",
    "加强日常监督",
    "完善制度规范",
    "推动学用结合",
)
_PLACES = (
    "机关三楼会议室",
    "机关五楼小会议室",
    "党员活动室",
    "七楼多功能厅",
    "二楼会议室",
    "文艺之家报告厅",
    "机关图书室",
    "一楼会客厅",
)
_BODY = (
    "会议传达学习了{doc}，{a}就学习贯彻提出要求，强调要把思想和行动统一到中央和省委的决策部署上来。",
    "{a}领学了{doc}有关内容，{b}、{c}结合{work}工作谈了体会，认为要在{action}上下功夫。",
    "会议研究部署了{work}工作，决定{action}，由{b}牵头，{n}月底前报送进展情况。",
    "{b}通报了本支部近期{work}情况，指出存在{flaw}等问题，会议要求{action}，抓好落实。",
    "围绕{work}，{c}、{a}先后发言，提出{k}条具体建议，会议逐条进行了讨论。",
    "会议听取了{work}专项检查情况汇报，对照{doc}查找差距，明确下一步{action}。",
    "{a}以“{theme}”为题讲了体会，联系{work}实际，谈认识、找差距、提措施。",
    "党员们结合岗位实际开展了讨论，{b}谈到{work}中{flaw}的问题，{c}建议{action}。",
    "会议对照{doc}开展了批评和自我批评，{a}带头查摆了{flaw}的问题，并明确整改措施。",
    "会议审议了{work}工作方案，经讨论，同意{action}，并将方案报机关党委备案。",
    "{c}介绍了赴基层开展{work}调研的情况，大家认为要坚持问题导向，{action}。",
    "会议学习了{doc}，结合{work}讨论了如何把学习成果转化为推动工作的实际成效，共收集意见{k}条。",
)
_FLAWS = (
    "学习不够深入",
    "制度执行不够严格",
    "工作作风不够扎实",
    "调研不够深入",
    "会议记录不够规范",
    "联系群众不够紧密",
    "担当精神不足",
    "创新意识不强",
    "督促检查不到位",
    "学用结合不紧",
)
_THEMES = (
    "不忘初心、牢记使命",
    "做合格党员",
    "讲规矩、有纪律",
    "坚定理想信念",
    "发挥先锋模范作用",
    "守纪律、讲规矩、作表率",
    "践行社会主义核心价值观",
    "增强“四个意识”",
    "担当作为、干事创业",
    "传承红色基因",
)
_OUTCOMES = (
    "会议议定：{action}，由{b}负责督办，{n}月底前完成。",
    "一是{action}；二是围绕{work}形成工作清单，报机关党委备案。",
    "会议决定{action}，{work}工作纳入下月支委会重点议题。",
    "会后{b}负责整理学习笔记，{action}，下次会议通报落实情况。",
    "形成整改措施{k}条，明确{b}为责任人，{action}。",
)

PETITION_SUBJECTS = (
    "反映协会会员资格认定问题",
    "反映职称评审程序问题",
    "举报下属单位违规发放补贴",
    "反映退休待遇落实问题",
    "反映文艺评奖公正性问题",
    "反映演出合同纠纷",
    "举报干部工作作风问题",
    "反映物业管理问题",
    "反映项目经费拨付迟缓",
    "反映会员维权诉求",
)
POSITIONS = ("处长", "副处长", "主任科员", "副主任科员", "办公室主任", "协会秘书长", "中心主任", "副巡视员")
VISIT_PLACES = (
    "市文联",
    "县文化馆",
    "乡镇综合文化站",
    "文艺创作基地",
    "少数民族村寨",
    "非遗传习所",
    "高校艺术学院",
)
VISIT_TOPICS = (
    "基层文艺队伍建设",
    "文艺惠民工作",
    "非遗保护传承",
    "文艺精品创作",
    "基层党建工作",
    "精准扶贫",
)
INTERVIEW_TOPICS = ("思想工作情况", "履行一岗双责", "党风廉政建设", "工作作风", "家庭和生活情况")


def cn_number(n: int) -> str:
    """Chinese numeral for 1..99, as in 机关第十二党支部."""
    if not 1 <= n <= 99:
        raise ValueError(f"cn_number supports 1..99, not {n}")
    tens, ones = divmod(n, 10)
    if tens == 0:
        return _DIGITS[ones]
    head = "十" if tens == 1 else _DIGITS[tens] + "十"
    return head + (_DIGITS[ones] if ones else "")


def person_name(rng: random.Random) -> str:
    """A plausible Chinese name of two or three characters."""
    given = rng.choice(GIVEN) if rng.random() < 0.3 else rng.choice(GIVEN) + rng.choice(GIVEN)
    return rng.choice(SURNAMES) + given


def cn_date(d: date) -> str:
    return f"{d.year}年{d.month}月{d.day}日"


def _pick(rng: random.Random, seq: Sequence[str]) -> str:
    """``rng.choice`` without its overhead (the generators call it millions of times)."""
    return seq[int(rng.random() * len(seq))]


_SLOTS: dict[str, Sequence[str]] = {
    "doc": _DOCUMENTS,
    "work": _WORK,
    "action": _ACTIONS,
    "flaw": _FLAWS,
    "theme": _THEMES,
}


@functools.cache
def _fields(template: str) -> tuple[str, ...]:
    return tuple(name for _, name, _, _ in string.Formatter().parse(template) if name)


def _fill(template: str, rng: random.Random, names: Sequence[str]) -> str:
    values: dict[str, str | int] = {}
    first = int(rng.random() * len(names))
    for name in _fields(template):
        pool = _SLOTS.get(name)
        if pool is not None:
            values[name] = _pick(rng, pool)
        elif name in ("n", "k"):
            values[name] = 1 + int(rng.random() * 12)
        else:  # a, b, c: three different people present (when there are three)
            values[name] = names[(first + "abc".index(name)) % len(names)]
    return template.format_map(values)


def minutes_text(
    rng: random.Random,
    *,
    kind: str,
    org_name: str,
    day: date,
    host_name: str,
    names: Sequence[str],
    expected: int,
    present: int,
) -> dict[str, str]:
    """Time, place, agenda, content and outcome of one meeting's minutes (recorder is the caller's)."""
    start = _pick(rng, ("08:30", "09:00", "09:30", "14:30", "15:00", "15:30"))
    end_hour = int(start[:2]) + 1 + (rng.random() < 0.5)
    place = _pick(rng, _PLACES)
    title = MEETING_NAMES[kind]
    opening = (
        f"{cn_date(day)}，{org_name}在{place}召开{title}，{host_name}主持，"
        f"应到{expected}人，实到{present}人。"
    )
    body = "".join(_fill(t, rng, names) for t in rng.sample(_BODY, rng.randint(3, 4)))
    return {
        "time": f"{start}-{end_hour:02d}:{start[3:]}",
        "place": place,
        "agenda": f"{_pick(rng, _THEMES)}；{_pick(rng, _WORK)}",
        "content": opening + body,
        "outcome": _fill(_pick(rng, _OUTCOMES), rng, names),
    }


def shingles(text: str, size: int = 3) -> set[str]:
    """Character ``size``-gram shingles of ``text`` (the whole text if shorter)."""
    if len(text) <= size:
        return {text}
    return {text[i : i + size] for i in range(len(text) - size + 1)}


def jaccard(a: str, b: str) -> float:
    """Jaccard similarity of the 3-gram shingle sets of two texts (the copy rule's measure)."""
    sa, sb = shingles(a), shingles(b)
    union = len(sa | sb)
    return len(sa & sb) / union if union else 1.0
