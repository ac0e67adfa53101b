"""Synthetic dossiers for benchmarks and rehearsals: ``warehouse seed --synthetic N``.

Realistic metadata, fast: Vietnamese names as Lạng Sơn's people carry them (Kinh, Tày and Nùng
family names), citizen ID numbers, procedure codes, results with and without an end date, received
between 2020 and today, spread over the units the way the province's work is (departments and
districts hold most of it, each commune a little), about 40% started and four in five of those complete
(every part the starter catalogue requires present), a tenth of the results returned by the one-stop
desks still owed. Loaded with COPY in batches; the triggers judge completeness as for any dossier.
"""

from __future__ import annotations

import random
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from uuid import UUID

from storage import Database, Dossiers, Units
from storage.dossiers import search_text
from warehouse.catalogue import STARTER

_REQUIRED = {v.procedure_code: v.required_parts for v in STARTER}

FAMILY = [
    "Nguyễn",
    "Hoàng",
    "Nông",
    "Lương",
    "Vi",
    "Lộc",
    "Triệu",
    "Hà",
    "Trần",
    "Lê",
    "Chu",
    "Lăng",
    "Lý",
    "Phạm",
    "Đinh",
]
MIDDLE = ["Văn", "Thị", "Đức", "Minh", "Thu", "Hồng", "Quang", "Ngọc"]
GIVEN = [
    "An", "Bình", "Cường", "Dung", "Hà", "Hải", "Hạnh", "Hoa", "Hùng", "Hương", "Lan", "Linh", "Long", "Mai",
    "Nam", "Nga", "Phương", "Quang", "Sơn", "Thảo", "Trang", "Tuấn", "Yến", "Khánh", "Thắm",
]  # fmt: skip
PROCEDURES = [
    ("1.001612", "Đăng ký khai sinh"),
    ("1.001193", "Đăng ký kết hôn"),
    ("1.000656", "Đăng ký khai tử"),
    ("1.003583", "Chứng thực bản sao từ bản chính"),
    ("1.004227", "Cấp giấy chứng nhận quyền sử dụng đất"),
    ("1.002255", "Cấp giấy phép xây dựng nhà ở riêng lẻ"),
    ("1.001757", "Đăng ký hộ kinh doanh"),
    ("2.000488", "Xác nhận tình trạng hôn nhân"),
    ("1.004945", "Cấp phiếu lý lịch tư pháp"),
    ("2.001159", "Trợ cấp xã hội hằng tháng"),
]
SHARE = {"department": 0.45, "district": 0.30, "commune": 0.25}
BATCH = 50_000


def _name(rng: random.Random) -> str:
    return f"{rng.choice(FAMILY)} {rng.choice(MIDDLE)} {rng.choice(GIVEN)}"


async def load_synthetic(db: Database, n: int, *, created_by: int, seed: int = 2023) -> int:
    rng = random.Random(seed)
    units = await Units(db.pool).find(level=None, parent_id=None, scope=None)
    by_level = {lvl: [u for u in units if u.level == lvl] for lvl in SHARE}
    levels = list(SHARE)
    weights = [SHARE[lvl] for lvl in levels]
    start = date(2020, 1, 1)
    days = (date.today() - start).days
    repo = Dossiers(db.pool)
    # Start after any sequence already used, so synthetic codes never collide with real ones.
    counters = await repo.code_counters()
    loaded = 0
    batch: list[tuple[Any, ...]] = []
    for _ in range(n):
        unit = rng.choice(by_level[rng.choices(levels, weights)[0]])
        received = start + timedelta(days=rng.randrange(days + 1))
        seq = counters.get((unit.id, received), 0) + 1
        if seq > 9999:
            continue  # a unit-day is full; skip rather than break the code pattern
        counters[(unit.id, received)] = seq
        code = f"{unit.code}-{received:%y%m%d}-{seq:04d}"
        procedure, title = rng.choice(PROCEDURES)
        subject = _name(rng)
        id_number = f"0{rng.randrange(20, 21)}{rng.randrange(10**9, 10**10)}"[:12]
        has_result = rng.random() < 0.6
        issued = received + timedelta(days=rng.randrange(1, 20)) if has_result else None
        valid_until = issued + timedelta(days=365 * rng.choice([1, 3, 5])) if issued and rng.random() < 0.4 else None
        values = {
            "code": code,
            "procedure_code": procedure,
            "title": title,
            "subject_name": subject,
            "subject_id_number": id_number,
            "result_number": f"{rng.randrange(1, 999)}/{received:%Y}/QĐ" if has_result else None,
        }
        created = datetime.combine(received, time(8), UTC) + timedelta(minutes=rng.randrange(540))
        digitized = created + timedelta(days=rng.randrange(0, 30)) if rng.random() < 0.4 else None
        complete = digitized is not None and rng.random() < 0.8
        owed = has_result and not complete and rng.random() < 0.1
        batch.append(
            (
                UUID(int=rng.getrandbits(128), version=4),
                code,
                unit.id,
                procedure,
                title,
                subject,
                "cccd",
                id_number,
                received,
                values["result_number"],
                issued,
                "UBND " + unit.name if has_result else None,
                valid_until,
                "KQ1" if has_result else None,
                created_by,
                created,
                digitized,
                search_text(values),
                _REQUIRED.get(procedure, []) if complete else [],
                complete and has_result,
                digitized if complete else None,
                issued if owed else None,
            )
        )
        if len(batch) >= BATCH:
            loaded += await repo.bulk_load(batch)
            batch = []
    if batch:
        loaded += await repo.bulk_load(batch)
    await repo.after_bulk_load()
    return loaded
