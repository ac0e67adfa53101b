"""The province's unit tree (Lạng Sơn, 2023) and the first province admin, created idempotently.

Organisation identifiers follow Decision 20/2020/QĐ-TTg (``000.00.00.Hxx``); the province's own group
``Hxx`` is a setting because it was not found in the sources. Departments and districts take the second
level (``000.00.NN.Hxx``), communes the third (``000.MM.NN.Hxx`` under district NN). The commune names
were not found either: communes are seeded as clearly marked placeholders, to be replaced by importing
the real list.
"""

from __future__ import annotations

from dataclasses import dataclass

from storage import Accounts, Database, Dossiers, Units
from storage.catalogue import Catalogue
from warehouse.catalogue import STARTER
from warehouse.security import Passwords, generate_password

PROVINCE_NAME = "UBND tỉnh Lạng Sơn"

# Likely list of the 20 departments and boards (not verified against an official source).
DEPARTMENTS = (
    "Văn phòng UBND tỉnh",
    "Sở Nội vụ",
    "Sở Tư pháp",
    "Sở Kế hoạch và Đầu tư",
    "Sở Tài chính",
    "Sở Công Thương",
    "Sở Nông nghiệp và Phát triển nông thôn",
    "Sở Giao thông vận tải",
    "Sở Xây dựng",
    "Sở Tài nguyên và Môi trường",
    "Sở Thông tin và Truyền thông",
    "Sở Lao động - Thương binh và Xã hội",
    "Sở Văn hóa, Thể thao và Du lịch",
    "Sở Khoa học và Công nghệ",
    "Sở Giáo dục và Đào tạo",
    "Sở Y tế",
    "Sở Ngoại vụ",
    "Thanh tra tỉnh",
    "Ban Dân tộc",
    "Ban Quản lý Khu kinh tế cửa khẩu Đồng Đăng - Lạng Sơn",
)

# District-level units and how many commune-level units each had in 2023 (200 in all).
DISTRICTS = (
    ("UBND thành phố Lạng Sơn", 8),
    ("UBND huyện Tràng Định", 22),
    ("UBND huyện Văn Lãng", 17),
    ("UBND huyện Văn Quan", 17),
    ("UBND huyện Bình Gia", 19),
    ("UBND huyện Bắc Sơn", 18),
    ("UBND huyện Hữu Lũng", 24),
    ("UBND huyện Chi Lăng", 20),
    ("UBND huyện Cao Lộc", 22),
    ("UBND huyện Lộc Bình", 21),
    ("UBND huyện Đình Lập", 12),
)

FIRST_DISTRICT_NUMBER = 21  # departments take 01-20 in the same group


@dataclass(frozen=True, slots=True)
class SeedReport:
    units: dict[str, int]
    admin_created: bool
    admin_password: str | None  # shown once, when generated
    catalogue_versions: int = 0  # procedure versions in the catalogue
    starter_loaded: bool = False  # the sample starter catalogue was loaded (the catalogue was empty)


def org_code(suffix: str, third: int = 0, second: int = 0) -> str:
    return f"000.{third:02d}.{second:02d}.{suffix}"


async def seed_units(db: Database, suffix: str) -> None:
    units = Units(db.pool)
    async with db.transaction() as conn:
        province = await units.upsert(conn, code=org_code(suffix), name=PROVINCE_NAME, level="province", parent_id=None)
        for n, name in enumerate(DEPARTMENTS, start=1):
            await units.upsert(conn, code=org_code(suffix, second=n), name=name, level="department", parent_id=province)
        for d, (name, communes) in enumerate(DISTRICTS, start=FIRST_DISTRICT_NUMBER):
            district = await units.upsert(
                conn, code=org_code(suffix, second=d), name=name, level="district", parent_id=province
            )
            short = name.removeprefix("UBND huyện ").removeprefix("UBND thành phố ")
            for c in range(1, communes + 1):
                await units.upsert(
                    conn,
                    code=org_code(suffix, third=c, second=d),
                    name=f"Xã tạm {c:02d} - {short} (chưa có tên thật)",
                    level="commune",
                    parent_id=district,
                    placeholder=True,
                )


async def seed(db: Database, *, suffix: str, admin_password: str, passwords: Passwords) -> SeedReport:
    """Create what is missing of the unit tree and the ``admin`` account; change nothing that exists."""
    await seed_units(db, suffix)
    units, accounts = Units(db.pool), Accounts(db.pool)
    (province,) = await units.find(level="province", parent_id=None, scope=None)
    generated: str | None = None
    created = False
    if await accounts.get_by_login("admin") is None:
        password = admin_password or generate_password(16)
        created = (
            await accounts.create(
                login="admin",
                unit_id=province.id,
                role="province_admin",
                password_hash=await passwords.hash_async(password),
                password_change_required=False,
            )
            is not None
        )
        generated = None if admin_password else password
    counts = await units.count_by_level()
    catalogue = Catalogue(db.pool)
    starter = False
    if await catalogue.count() == 0 and not await Dossiers(db.pool).any():
        # Sample data, so that a new warehouse judges its first dossiers; the province's own list replaces it.
        # Never into a warehouse that already holds records: they would be judged against sample data.
        async with db.transaction() as conn:
            await catalogue.put(conn, STARTER, None)
        starter = True
    return SeedReport(
        units=counts,
        admin_created=created,
        admin_password=generated if created else None,
        catalogue_versions=await catalogue.count(),
        starter_loaded=starter,
    )
