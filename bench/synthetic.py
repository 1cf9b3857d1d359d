"""Synthetic HR export of a municipal audit bureau: a seeded department tree and its people (DESIGN.md §9).

    python -m bench.synthetic --people 300 --seed 7 --out syncd/data/demo

The same `people` and `seed` always give the same rows (for one Faker version: names are drawn from
its `zh_CN` lists). The tree is 郑州市审计局 with its 处室 and a 局属单位 node with two centres; as
`people` grows, district service centres (then numbered sub-centres, grouped into 片区) join
局属单位, so that from a few hundred people on a leaf department keeps roughly 10–60 people. People
are produced lazily, one row at a time: a million take seconds and, through `write_csv`, little memory.

Mobiles are `138/139/150/186` + `00` + six digits and 工号 `A` + six digits (seven from a million
people), each a seeded permutation of a sequence, hence unique. Inactive people are exact quotas,
rounded down — 1.2% 退休, 0.3% 调离, 0.3% 离职 — never a department's head or deputy: 300 people
give three retirements and nobody else inactive.
"""

from __future__ import annotations

import argparse
import bisect
import csv
import itertools
import math
import random
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from faker import Faker

DEPARTMENT_COLUMNS: tuple[str, ...] = ("部门编号", "部门名称", "简称", "上级部门编号", "排序")
PEOPLE_COLUMNS: tuple[str, ...] = (
    "工号", "姓名", "性别", "手机号", "部门编号", "编制", "职级", "政治面貌", "人员角色",
    "职务", "职务层次", "办公电话", "领导分工", "人员状态", "排序",
)
ENCODINGS: tuple[str, ...] = ("utf-8", "utf-8-sig", "gb18030")
ROOT_ID = "D0001"

_ADMIN, _PUBLIC, _SERVICE = "行政编制", "事业编制", "工勤编制"
_LEADER, _MIDDLE, _STAFF = "领导", "中层", "普通人员"
_TARGET_LEAF_SIZE = 25  # people per leaf department the tree grows towards
_NON_LEAF_CADRES = 3  # 主任 and two 副主任 of a centre that has 科室 of its own
_SUB_CENTRE_LEAVES = 7  # 综合科 and six 业务科 per numbered sub-centre
_FAN_OUT = 20  # sub-centres under one district centre or 片区
_MOBILE_PREFIXES = ("138", "139", "150", "186")
_MOBILE_BLOCK = 1_000_000  # six free digits after prefix + "00"
_INACTIVE_QUOTAS = (("退休", 0.012), ("调离", 0.003), ("离职", 0.003))
_MINORITY_SHARE = 0.006

# name, 简称, relative size, 编制, head post, deputy post
_OFFICES: tuple[tuple[str, str, float, str, str, str], ...] = (
    ("办公室", "", 1.4, _ADMIN, "主任", "副主任"),
    ("组织人事处", "人事处", 1.0, _ADMIN, "处长", "副处长"),
    ("法规审理处", "法规处", 0.9, _ADMIN, "处长", "副处长"),
    ("审计管理处", "审管处", 0.8, _ADMIN, "处长", "副处长"),
    ("财政审计处", "财政处", 1.2, _ADMIN, "处长", "副处长"),
    ("行政事业审计处", "行政事业处", 1.1, _ADMIN, "处长", "副处长"),
    ("金融审计处", "金融处", 1.0, _ADMIN, "处长", "副处长"),
    ("经济责任审计处", "经责处", 1.3, _ADMIN, "处长", "副处长"),
    ("企业审计处", "企业处", 1.0, _ADMIN, "处长", "副处长"),
    ("固定资产投资审计处", "投资处", 1.2, _ADMIN, "处长", "副处长"),
    ("社会保障审计处", "社保处", 1.0, _ADMIN, "处长", "副处长"),
    ("农业农村审计处", "农业处", 0.9, _ADMIN, "处长", "副处长"),
    ("资源环境审计处", "资环处", 0.9, _ADMIN, "处长", "副处长"),
    ("电子数据审计处", "数据处", 1.0, _ADMIN, "处长", "副处长"),
    ("机关党委", "", 0.6, _ADMIN, "专职副书记", "副书记"),
    ("审计信息中心", "信息中心", 0.9, _PUBLIC, "主任", "副主任"),
)
# name, 简称, its 科室
_CENTRES: tuple[tuple[str, str, tuple[str, ...]], ...] = (
    ("郑州市审计局内部审计指导中心", "内审中心", ("综合科", "指导一科", "指导二科")),
    ("郑州市经济责任审计服务中心", "经责中心", ("综合科", "业务一科", "业务二科", "业务三科")),
)
_DISTRICTS: tuple[tuple[str, str], ...] = (
    ("中原区", "中原"), ("二七区", "二七"), ("管城回族区", "管城"), ("金水区", "金水"),
    ("上街区", "上街"), ("惠济区", "惠济"), ("郑东新区", "郑东"), ("经济技术开发区", "经开"),
    ("高新技术产业开发区", "高新"), ("航空港经济综合实验区", "航空港"), ("巩义市", "巩义"),
    ("荥阳市", "荥阳"), ("新密市", "新密"), ("新郑市", "新郑"), ("登封市", "登封"), ("中牟县", "中牟"),
)
# The bureau's leadership, seated in the root department: post, level, whether the post 分管 处室.
_LEADERSHIP: tuple[tuple[str, str, bool], ...] = (
    ("局长", "正局级", False),
    ("副局长", "副局级", True),
    ("副局长", "副局级", True),
    ("副局长", "副局级", True),
    ("总审计师", "副局级", True),
    ("纪检监察组组长", "副局级", False),
)
_FIXED_DUTIES = {"局长": "主持全面工作", "纪检监察组组长": "负责派驻纪检监察组全面工作"}

_RANKS: dict[tuple[str, str], tuple[tuple[str, float], ...]] = {
    (_ADMIN, "正局级"): (("一级巡视员", 1), ("二级巡视员", 2)),
    (_ADMIN, "副局级"): (("二级巡视员", 1), ("一级调研员", 2)),
    (_ADMIN, "正处级"): (("一级调研员", 1), ("二级调研员", 2)),
    (_ADMIN, "副处级"): (("三级调研员", 1), ("四级调研员", 2)),
    (_ADMIN, "正科级"): (("一级主任科员", 1), ("二级主任科员", 2)),
    (_ADMIN, "副科级"): (("三级主任科员", 1), ("四级主任科员", 2)),
    (_ADMIN, "科员级"): (
        ("四级调研员", 3), ("一级主任科员", 6), ("二级主任科员", 10), ("三级主任科员", 14),
        ("四级主任科员", 18), ("一级科员", 30), ("二级科员", 19),
    ),
    (_PUBLIC, "正处级"): (("五级职员", 1),),
    (_PUBLIC, "副处级"): (("六级职员", 1),),
    (_PUBLIC, "正科级"): (("七级职员", 1),),
    (_PUBLIC, "副科级"): (("八级职员", 1),),
    (_PUBLIC, "科员级"): (
        ("九级职员", 12), ("十级职员", 6), ("专业技术七级", 4), ("专业技术八级", 8), ("专业技术九级", 12),
        ("专业技术十级", 18), ("专业技术十一级", 12), ("专业技术十二级", 6),
    ),
    (_SERVICE, "科员级"): (("技师", 2), ("高级工", 5), ("中级工", 3)),
}
# GB/T 4762 labels as HR writes them; cadres are almost all party members.
_POLITICAL_STAFF = (
    ("中共党员", 70), ("中共预备党员", 3), ("共青团员", 8), ("民革党员", 1), ("民盟盟员", 1.5),
    ("民建会员", 1), ("九三学社社员", 1), ("无党派人士", 1.5), ("群众", 13),
)
_POLITICAL_CADRE = (
    ("中共党员", 92), ("民革党员", 1), ("民盟盟员", 2), ("民建会员", 1), ("九三学社社员", 2), ("无党派人士", 2),
)
# Uyghur-style names, written the way Chinese HR systems do: given name · father's name.
_MINORITY_GIVEN = {
    "男": ("艾力", "买买提", "阿不都热依木", "吐尔逊", "艾山", "热合曼", "伊力哈木", "阿迪力", "亚森",
          "麦麦提敏", "依明", "玉苏甫", "努尔兰", "阿布拉"),
    "女": ("阿依古丽", "古丽娜尔", "热依拉", "米热古丽", "帕提古丽", "阿娜尔古丽", "努尔比亚", "迪丽娜尔",
          "再娜甫", "布维帕提玛", "古丽米拉", "阿依努尔"),
}
_MINORITY_FATHER = ("买买提", "吐尔逊", "艾山", "阿不都拉", "司马义", "热合曼", "依明", "玉素甫", "卡德尔",
                    "托合提", "肉孜", "吾买尔")
_DIGITS = "零一二三四五六七八九"


@dataclass(slots=True)
class _Unit:
    """A department while the tree is planned: what it is called, who heads it, how many people it gets."""

    name: str
    short_name: str = ""
    establishment: str = _ADMIN
    head: str = "处长"
    deputy: str = "副处长"
    level: str = "正处级"
    deputy_level: str = "副处级"
    weight: float = 1.0
    kind: str = "unit"  # root | group | unit
    children: list[_Unit] = field(default_factory=list)
    id: str = ""
    parent: str = ""
    order: int = 0
    index: int = 0
    size: int = 0
    duties: list[str] = field(default_factory=list)

    def cadres(self) -> int:
        """How many of its people are its head and deputies (they come first)."""
        if self.kind != "unit" or self.children:
            return self.size
        return min(self.size, 1 + _deputies(self.size))


class _Choice:
    """A weighted choice from a fixed table, quick enough for a million draws."""

    def __init__(self, table: Sequence[tuple[str, float]]) -> None:
        self.values = [value for value, _ in table]
        self.cumulative = list(itertools.accumulate(weight for _, weight in table))

    def pick(self, rng: random.Random) -> str:
        """One value, drawn with the table's weights."""
        return self.values[bisect.bisect_right(self.cumulative, rng.random() * self.cumulative[-1])]


_RANK_CHOICES = {key: _Choice(table) for key, table in _RANKS.items()}
_POLITICAL_STAFF_CHOICE = _Choice(_POLITICAL_STAFF)
_POLITICAL_CADRE_CHOICE = _Choice(_POLITICAL_CADRE)


def chinese_number(n: int) -> str:
    """1–9999 in Chinese numerals as used in names: 三, 十二, 二十, 一百零五."""
    if not 0 < n < 10_000:
        raise ValueError(f"out of range: {n}")
    text = ""
    zero = False
    for value, unit in ((1000, "千"), (100, "百"), (10, "十"), (1, "")):
        digit = n // value % 10
        if digit:
            if zero:
                text += "零"
            text += _DIGITS[digit] + unit
            zero = False
        elif text:
            zero = True
    return text.removeprefix("一") if 10 <= n < 20 else text


def _deputies(size: int) -> int:
    if size < 4:
        return 0
    if size < 12:
        return 1
    return 2 if size < 30 else 3


def _section(name: str, establishment: str) -> _Unit:
    return _Unit(name, "", establishment, "科长", "副科长", "正科级", "副科级", 0.8)


def _centre(name: str, short_name: str, sections: Iterable[str]) -> _Unit:
    unit = _Unit(name, short_name, _PUBLIC, "主任", "副主任")
    unit.children = [_section(section, _PUBLIC) for section in sections]
    return unit


def _business_sections(count: int) -> list[str]:
    return ["综合科", *(f"业务{chinese_number(i)}科" for i in range(1, count))]


def _district_centres(leaves: int) -> list[_Unit]:
    """District service centres holding `leaves` 科室 between them, in numbered sub-centres (and 片区) when large."""
    count = min(len(_DISTRICTS), math.ceil(leaves / 6))
    centres = []
    for i, (district, short) in enumerate(_DISTRICTS[:count]):
        own = leaves // count + (i < leaves % count)
        name = f"{district}审计服务中心"
        if own <= 10:
            centres.append(_centre(name, f"{short}中心", _business_sections(own)))
            continue
        centre = _centre(name, f"{short}中心", ["综合科"])
        rest = own - 1
        count_subs = math.ceil(rest / _SUB_CENTRE_LEAVES)
        subs = []
        for s in range(count_subs):
            number = chinese_number(s + 1)
            sub = _centre(f"{name}第{number}分中心", f"第{number}分中心",
                          _business_sections(rest // count_subs + (s < rest % count_subs)))
            sub.level, sub.deputy_level = "副处级", "正科级"
            subs.append(sub)
        if len(subs) <= _FAN_OUT:
            centre.children.extend(subs)
        else:
            for a, first in enumerate(range(0, len(subs), _FAN_OUT), 1):
                area = _centre(f"{name}第{chinese_number(a)}片区", f"第{chinese_number(a)}片区", [])
                area.level, area.deputy_level = "副处级", "正科级"
                area.children = subs[first:first + _FAN_OUT]
                for sub in area.children:
                    sub.level, sub.deputy_level = "正科级", "副科级"
                centre.children.append(area)
        centres.append(centre)
    return centres


def _plan_tree(people: int) -> _Unit:
    root = _Unit("郑州市审计局", "市审计局", kind="root")
    for name, short, weight, establishment, head, deputy in _OFFICES:
        root.children.append(_Unit(name, short, establishment, head, deputy, weight=weight))
    group = _Unit("局属单位", kind="group")
    group.children = [_centre(*centre) for centre in _CENTRES]
    base_leaves = len(_OFFICES) + sum(len(sections) for _, _, sections in _CENTRES)
    extra = math.ceil(people / _TARGET_LEAF_SIZE) - base_leaves
    if extra > 0:
        group.children.extend(_district_centres(extra))
    root.children.append(group)
    return root


def _flatten(root: _Unit) -> list[_Unit]:
    """Pre-order (parents first), assigning ids, parents and sibling order."""
    units: list[_Unit] = []
    stack: list[tuple[_Unit, str, int]] = [(root, "", 1)]
    while stack:
        unit, parent, order = stack.pop()
        unit.index = len(units)
        unit.id = f"D{unit.index + 1:04d}"
        unit.parent, unit.order = parent, order
        units.append(unit)
        stack.extend((child, unit.id, i) for i, child in reversed(list(enumerate(unit.children, 1))))
    return units


def _allocate(units: list[_Unit], people: int, rng: random.Random) -> None:
    """Seat the leadership, then the centres' cadres, then share the rest among the leaves by weight."""
    left = people
    for unit in units:
        if unit.kind == "root":
            unit.size = min(len(_LEADERSHIP), left)
        elif unit.kind == "unit" and unit.children:
            unit.size = min(_NON_LEAF_CADRES, left)
        left -= unit.size
    leaves = [unit for unit in units if unit.kind == "unit" and not unit.children]
    weights = [unit.weight * rng.uniform(0.6, 1.4) for unit in leaves]
    total = sum(weights)
    shares = [left * weight / total for weight in weights]
    for unit, share in zip(leaves, shares, strict=True):
        unit.size = int(share)
    short = left - sum(unit.size for unit in leaves)
    by_remainder = sorted(range(len(leaves)), key=lambda i: (int(shares[i]) - shares[i], i))
    for i in by_remainder[:short]:
        leaves[i].size += 1


def _assign_duties(root: _Unit) -> None:
    """Split the first-level departments, in order, among the leaders who 分管 them."""
    seats = [i for i, (_, _, oversees) in enumerate(_LEADERSHIP[:root.size]) if oversees]
    names = [child.name for child in root.children]
    root.duties = [_FIXED_DUTIES.get(post, "") for post, _, _ in _LEADERSHIP[:root.size]]
    for n, seat in enumerate(seats):
        start, end = len(names) * n // len(seats), len(names) * (n + 1) // len(seats)
        root.duties[seat] = "分管" + "、".join(names[start:end])


class _Permutation:
    """A seeded bijection of 0..modulus-1 that scrambles neighbours: a Feistel network, cycle-walked into range."""

    _ROUNDS = 4

    def __init__(self, modulus: int, rng: random.Random) -> None:
        self.modulus = modulus
        self.half = max(1, ((modulus - 1).bit_length() + 1) // 2)
        self.mask = (1 << self.half) - 1
        self.keys = [rng.getrandbits(32) for _ in range(self._ROUNDS)]

    def __call__(self, n: int) -> int:
        """The image of n."""
        while True:
            left, right = n >> self.half, n & self.mask
            for key in self.keys:
                mixed = ((right + key) * 0x9E3779B1) & 0xFFFFFFFF
                left, right = right, left ^ ((mixed ^ (mixed >> 13)) & self.mask)
            n = (left << self.half) | right
            if n < self.modulus:
                return n


@dataclass(frozen=True, slots=True)
class _NamePool:
    """Surnames and given names drawn once from Faker zh_CN, combined per person."""

    surnames: list[str]
    given: dict[str, list[str]]

    @classmethod
    def draw(cls, seed: int, size: int = 2000) -> _NamePool:
        """A pool of `size` surnames (with Faker's frequencies) and given names per gender."""
        fake = Faker("zh_CN")
        fake.seed_instance(seed)
        return cls(
            surnames=[fake.last_name() for _ in range(size)],
            given={"男": [fake.first_name_male() for _ in range(size // 2)],
                   "女": [fake.first_name_female() for _ in range(size // 2)]},
        )

    def name(self, gender: str, rng: random.Random, minority: bool) -> str:
        """A name for a person of that gender."""
        if minority:
            return f"{rng.choice(_MINORITY_GIVEN[gender])}·{rng.choice(_MINORITY_FATHER)}"
        return rng.choice(self.surnames) + rng.choice(self.given[gender])


def _department_row(unit: _Unit) -> dict[str, str]:
    return dict(zip(DEPARTMENT_COLUMNS, (unit.id, unit.name, unit.short_name, unit.parent, str(unit.order)),
                    strict=True))


def _quota_picks(rng: random.Random, population: int, count: int, excluded: set[int]) -> list[int]:
    """`count` distinct indices below `population`, none of them in `excluded`."""
    count = min(count, population - len(excluded))
    picked: list[int] = []
    seen = set(excluded)
    while len(picked) < count:
        n = rng.randrange(population)
        if n not in seen:
            seen.add(n)
            picked.append(n)
    return picked


def _people_rows(units: list[_Unit], people: int, seed: int) -> Iterator[dict[str, str]]:
    rng = random.Random(f"{seed}:people")
    names = _NamePool.draw(seed)
    id_width = max(6, len(str(people)))
    employee_ids = _Permutation(10**id_width - 1, rng)
    mobiles = _Permutation(len(_MOBILE_PREFIXES) * _MOBILE_BLOCK, rng)
    cadres: set[int] = set()
    start = 0
    for unit in units:
        cadres.update(range(start, start + unit.cadres()))
        start += unit.size
    status: dict[int, str] = {}
    for label, share in _INACTIVE_QUOTAS:
        status.update(dict.fromkeys(_quota_picks(rng, people, int(people * share), cadres | set(status)), label))
    minority_count = max(2, round(people * _MINORITY_SHARE)) if people >= 50 else 0
    minority = set(_quota_picks(rng, people, minority_count, set()))
    del cadres

    n = 0
    for unit in units:
        line_prefix = f"0371-{6718 + unit.index // 1000}{unit.index % 1000:03d}"
        for j in range(unit.size):
            if unit.kind == "root":
                post, level, _ = _LEADERSHIP[j]
                role, establishment, duties = _LEADER, _ADMIN, unit.duties[j]
                phone = f"{line_prefix}{j % 10}"
            elif j < unit.cadres():
                post, level = (unit.head, unit.level) if j == 0 else (unit.deputy, unit.deputy_level)
                role, establishment, duties = _MIDDLE, unit.establishment, ""
                phone = f"{line_prefix}{min(j, 4) + 1}"
            else:
                role, level, duties = _STAFF, "科员级", ""
                establishment = _staff_establishment(unit, rng)
                post = _staff_post(establishment, rng)
                phone = f"{line_prefix}{6 + j % 4}"
            male_share = 0.8 if role == _LEADER else 0.68 if role == _MIDDLE else 0.52
            gender = "男" if rng.random() < male_share else "女"
            political = (_POLITICAL_STAFF_CHOICE if role == _STAFF else _POLITICAL_CADRE_CHOICE).pick(rng)
            if post == "局长":
                political = "中共党员"
            employee = employee_ids(n) + 1
            mobile = mobiles(n)
            yield {
                "工号": f"A{employee:0{id_width}d}",
                "姓名": names.name(gender, rng, n in minority),
                "性别": gender,
                "手机号": f"{_MOBILE_PREFIXES[mobile // _MOBILE_BLOCK]}00{mobile % _MOBILE_BLOCK:06d}",
                "部门编号": unit.id,
                "编制": establishment,
                "职级": _RANK_CHOICES[establishment, level].pick(rng),
                "政治面貌": political,
                "人员角色": role,
                "职务": post,
                "职务层次": level,
                "办公电话": phone,
                "领导分工": duties,
                "人员状态": status.get(n, "在职"),
                "排序": str(j + 1),
            }
            n += 1


def _staff_establishment(unit: _Unit, rng: random.Random) -> str:
    roll = rng.random()
    if unit.name == "办公室":
        return _SERVICE if roll < 0.12 else _ADMIN
    if unit.establishment == _ADMIN:
        return _PUBLIC if roll < 0.02 else _ADMIN
    return _SERVICE if roll < 0.04 else _PUBLIC


def _staff_post(establishment: str, rng: random.Random) -> str:
    if establishment == _SERVICE:
        return "驾驶员" if rng.random() < 0.5 else "工勤人员"
    return "科员"


def generate_lazily(people: int, seed: int = 0) -> tuple[list[dict[str, str]], Iterator[dict[str, str]]]:
    """Department rows, and the people rows as an iterator (for writing millions without holding them)."""
    capacity = len(_MOBILE_PREFIXES) * _MOBILE_BLOCK
    if not 0 <= people <= capacity:
        raise ValueError(f"people must be between 0 and {capacity}, not {people}")
    root = _plan_tree(people)
    units = _flatten(root)
    _allocate(units, people, random.Random(f"{seed}:tree"))
    _assign_duties(root)
    return [_department_row(unit) for unit in units], _people_rows(units, people, seed)


def generate(people: int, seed: int = 0) -> tuple[list[dict[str, str]], list[dict[str, str]]]:
    """Department rows and people rows, keyed by the CSV headers of DESIGN.md §9."""
    departments, rows = generate_lazily(people, seed)
    return departments, list(rows)


def write_csv(directory: Path, departments: Iterable[Mapping[str, str]], people: Iterable[Mapping[str, str]],
              encoding: str = "utf-8") -> None:
    """Write `departments.csv` and `people.csv` into the directory, header row first."""
    directory.mkdir(parents=True, exist_ok=True)
    for name, columns, rows in (("departments.csv", DEPARTMENT_COLUMNS, departments),
                                ("people.csv", PEOPLE_COLUMNS, people)):
        with (directory / name).open("w", encoding=encoding, newline="") as handle:
            writer = csv.writer(handle, lineterminator="\n")
            writer.writerow(columns)
            writer.writerows([row[column] for column in columns] for row in rows)


def main(argv: Sequence[str] | None = None) -> int:
    """Command line: write a synthetic HR export."""
    parser = argparse.ArgumentParser(prog="python -m bench.synthetic", description=main.__doc__)
    parser.add_argument("--people", type=int, required=True, help="number of people")
    parser.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    parser.add_argument("--out", type=Path, required=True, help="directory for departments.csv and people.csv")
    parser.add_argument("--encoding", choices=ENCODINGS, default="utf-8")
    args = parser.parse_args(argv)
    try:
        departments, people = generate_lazily(args.people, args.seed)
    except ValueError as exc:
        parser.error(str(exc))
    write_csv(args.out, departments, people, args.encoding)
    print(f"wrote {len(departments)} departments and {args.people} people to {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
