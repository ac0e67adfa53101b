"""The console's words: Vietnamese first, English when the person switches. One key per phrase."""

from __future__ import annotations

LANGUAGES = ("vi", "en")
LANG_COOKIE = "kho_lang"

WORDS: dict[str, tuple[str, str]] = {
    "app": ("Kho số hóa", "Digitization warehouse"),
    "skip": ("Bỏ qua, tới nội dung chính", "Skip to the main content"),
    "sign_in": ("Đăng nhập", "Sign in"),
    "sign_out": ("Đăng xuất", "Sign out"),
    "login": ("Tên đăng nhập", "Login"),
    "password": ("Mật khẩu", "Password"),
    "current_password": ("Mật khẩu hiện tại", "Current password"),
    "new_password": ("Mật khẩu mới (ít nhất 10 ký tự)", "New password (at least 10 characters)"),
    "change_password": ("Đổi mật khẩu", "Change password"),
    "must_change": (
        "Đây là lần đăng nhập đầu tiên với mật khẩu dùng một lần. Hãy đặt mật khẩu của riêng bạn.",
        "This is a first sign-in with a one-time password. Choose your own password.",
    ),
    "password_changed": ("Đã đổi mật khẩu.", "Your password was changed."),
    "dossiers": ("Hồ sơ", "Dossiers"),
    "new_dossier": ("Tạo hồ sơ", "New dossier"),
    "dashboard": ("Tiến độ", "Progress"),
    "accounts": ("Tài khoản", "Accounts"),
    "search": ("Tìm kiếm", "Search"),
    "search_hint": (
        "Mã hồ sơ, tên người nộp, nội dung tệp; gõ có dấu hay không dấu đều được",
        "Dossier code, applicant's name, file text; with or without diacritics",
    ),
    "reuse": ("Tra cứu để tái sử dụng theo số giấy tờ", "Reuse lookup by ID number"),
    "id_number": ("Số CCCD/CMND/hộ chiếu", "ID card or passport number"),
    "only_valid": ("Chỉ kết quả còn hiệu lực", "Valid results only"),
    "procedure": ("Thủ tục", "Procedure"),
    "all": ("Tất cả", "All"),
    "code": ("Mã hồ sơ", "Code"),
    "subject": ("Người nộp / chủ hồ sơ", "Applicant"),
    "subject_name": ("Họ và tên", "Full name"),
    "id_kind": ("Loại giấy tờ", "ID kind"),
    "title": ("Trích yếu", "Title"),
    "received_on": ("Ngày tiếp nhận", "Received on"),
    "unit": ("Đơn vị", "Unit"),
    "files": ("Tệp", "Files"),
    "state": ("Trạng thái", "State"),
    "complete": ("Đủ thành phần", "Complete"),
    "incomplete": ("Còn thiếu thành phần", "Parts missing"),
    "none_found": ("Không có hồ sơ nào.", "No dossier found."),
    "next_page": ("Trang sau", "Next page"),
    "create": ("Tạo", "Create"),
    "result_number": ("Số kết quả", "Result number"),
    "result_issued_on": ("Ngày cấp kết quả", "Result issued on"),
    "result_issuer": ("Cơ quan cấp", "Issued by"),
    "result_optional": ("Kết quả (nếu có)", "Result (if any)"),
    "drop_here": (
        "Kéo thả các tệp PDF vào đây, hoặc bấm để chọn tệp",
        "Drop PDF files here, or press to choose files",
    ),
    "choose_files": ("Chọn tệp PDF", "Choose PDF files"),
    "kind": ("Loại tệp", "File kind"),
    "kind_component": ("Thành phần hồ sơ", "Dossier component"),
    "kind_result": ("Kết quả giải quyết", "Result"),
    "uploading": ("Đang gửi", "Sending"),
    "waiting_link": ("Mất kết nối, đang thử lại…", "Connection lost, trying again…"),
    "sent": ("Đã gửi, đang kiểm tra", "Sent, being inspected"),
    "failed": ("Không gửi được", "Could not send"),
    "verdict": ("Kết quả kiểm tra", "Inspection"),
    "findings": ("Nhận xét", "Findings"),
    "what_to_do": (
        "Tệp này không được lưu làm bản số hóa. Sửa theo nhận xét ở trên (quét lại nếu cần) rồi gửi tệp mới.",
        "This file is not kept as the digitized copy. Fix what the findings above say (scan again if needed), "
        "then send the new file.",
    ),
    "rejected": ("Bị từ chối", "Rejected"),
    "accepted": ("Đạt", "Accepted"),
    "accepted_warnings": ("Đạt, có lưu ý", "Accepted, with findings"),
    "processing": ("Đang kiểm tra", "Being inspected"),
    "view": ("Xem", "View"),
    "download": ("Tải về", "Download"),
    "pages": ("trang", "pages"),
    "no_files": ("Hồ sơ chưa có tệp nào.", "This dossier has no file yet."),
    "back": ("Quay lại", "Back"),
    "provision": ("Cấp tài khoản cho các xã của một huyện", "Accounts for every commune of a district"),
    "provision_help": (
        "Tạo tài khoản cho mọi xã (hoặc huyện) dưới đơn vị đã chọn; chạy lại chỉ tạo những tài khoản còn thiếu. "
        "Tệp mật khẩu dùng một lần chỉ tải được một lần.",
        "Creates accounts for every commune (or district) under the unit; running it again creates only the "
        "missing ones. The file of one-time passwords can be downloaded only this once.",
    ),
    "parent_unit": ("Mã đơn vị cha (huyện)", "Parent unit code (district)"),
    "level": ("Cấp", "Level"),
    "per_unit": ("Số tài khoản mỗi đơn vị", "Accounts per unit"),
    "role": ("Vai trò", "Role"),
    "provision_go": ("Tạo và tải tệp mật khẩu", "Create and download the credentials"),
    "reset": ("Cấp lại mật khẩu", "Reset password"),
    "disable": ("Khóa", "Disable"),
    "enable": ("Mở khóa", "Enable"),
    "new_credentials": ("Mật khẩu dùng một lần mới", "New one-time password"),
    "shown_once": ("Chỉ hiển thị một lần.", "Shown only once."),
    "year": ("Năm", "Year"),
    "declared_total": ("Tổng số hồ sơ", "Declared total"),
    "digitized": ("Đã số hóa", "Digitized"),
    "rate": ("Tỷ lệ", "Rate"),
    "target": ("Chỉ tiêu", "Target"),
    "gap": ("Còn thiếu", "Gap"),
    "trend": ("8 tuần gần nhất", "Last 8 weeks"),
    "by_level": ("Theo cấp", "By level"),
    "by_unit": ("Theo đơn vị", "By unit"),
    "xlsx": ("Tải bảng tính (XLSX)", "Download the spreadsheet (XLSX)"),
    "png": ("Tải biểu đồ (PNG)", "Download the chart (PNG)"),
    "error": ("Có lỗi", "Something went wrong"),
    "not_found": ("Không tìm thấy", "Not found"),
    "forbidden": ("Không được phép", "Not allowed"),
    "too_many": ("Quá nhiều yêu cầu", "Too many requests"),
    "home": ("Trang chính", "Home"),
    "owed": ("Kết quả còn nợ", "Results owed"),
    "owed_help": (
        "Hồ sơ bộ phận một cửa đã trả mà kết quả điện tử chưa được số hóa, chờ lâu nhất ở trên. Tải kết quả lên "
        "(loại Kết quả giải quyết) là hồ sơ rời danh sách khi tệp đạt kiểm tra.",
        "Dossiers the one-stop desks returned whose electronic result is not digitized yet, the longest waiting "
        "first. Upload the result (kind Result): the dossier leaves the list once the file passes inspection.",
    ),
    "returned_on": ("Ngày trả kết quả", "Returned on"),
    "missing_parts": ("Còn thiếu", "Still missing"),
    "days": ("ngày", "days"),
    "nothing_owed": ("Không còn kết quả nào phải số hóa.", "No result is owed."),
    "failed_files": ("Tệp lỗi", "Failed files"),
    "failed_help": (
        "Tệp mà việc kiểm tra đã dừng sau nhiều lần lỗi tạm thời. Gửi lại để kiểm tra; bản gốc không bị thay đổi.",
        "Files whose inspection gave up after transient faults. Send one back to be inspected; its bytes stay as "
        "they are.",
    ),
    "stage": ("Bước", "Stage"),
    "last_error": ("Lỗi gần nhất", "Last error"),
    "reprocess": ("Kiểm tra lại", "Inspect again"),
    "sent_back": ("Đã gửi lại để kiểm tra", "Sent back for inspection"),
    "no_failures": ("Không có tệp lỗi.", "No failed file."),
    "audit": ("Nhật ký", "Audit trail"),
    "record": ("Bản ghi (mã)", "Record (id)"),
    "day": ("Ngày", "Day"),
    "when": ("Thời điểm", "When"),
    "action": ("Thao tác", "Action"),
    "address": ("Địa chỉ", "Address"),
    "targets": ("Chỉ tiêu", "Targets"),
    "unit_code": ("Mã đơn vị", "Unit code"),
    "target_percent": ("Chỉ tiêu (%; để trống: mặc định của cấp)", "Target (%; empty: the level's default)"),
    "save": ("Lưu", "Save"),
    "limits": ("Giới hạn của tài khoản", "The account's limits"),
    "limits_help": (
        "Để trống là dùng mức mặc định. Quản trị đơn vị chỉ được hạ; quản trị tỉnh được nâng.",
        "Empty keeps the default. A unit's administrator may only lower them; the province's may raise them.",
    ),
    "requests_per_second": ("Yêu cầu mỗi giây", "Requests a second"),
    "concurrent_uploads": ("Số tệp gửi cùng lúc", "Uploads at once"),
    "upload_mb_per_minute": ("MB tải lên mỗi phút", "MB uploaded a minute"),
    "api_keys": ("Khóa API", "API keys"),
    "api_keys_help": (
        "Khóa cho phần mềm máy quét hoặc hệ thống một cửa, hoạt động với quyền của tài khoản này (hoặc chỉ trong "
        "các đơn vị ghi ở dưới). Khóa chỉ hiển thị một lần.",
        "A key for scanner software or a one-stop system, acting with this account's rights (or only within the "
        "units given below). The key is shown once.",
    ),
    "key_label": ("Tên khóa (dùng cho việc gì)", "Label (what uses it)"),
    "key_units": (
        "Chỉ cho các đơn vị (mã, cách nhau bởi dấu phẩy; để trống: mọi đơn vị của tài khoản)",
        "Only for these units (codes, comma-separated; empty: every unit of the account)",
    ),
    "created": ("Ngày tạo", "Created"),
    "last_used": ("Dùng lần cuối", "Last used"),
    "revoke": ("Thu hồi", "Revoke"),
    "revoked": ("Đã thu hồi", "Revoked"),
    "active": ("Đang dùng", "Active"),
    "disabled": ("Đã khóa", "Disabled"),
    "units": ("Đơn vị", "Units"),
    "merged_into": ("đã sáp nhập vào", "merged into"),
    "merge_title": ("Sáp nhập đơn vị", "Merge a unit"),
    "merge_code": ("Mã đơn vị bị sáp nhập", "Code of the unit merged"),
    "merge_into": ("Sáp nhập vào (mã)", "Into (code)"),
    "effective_on": ("Từ ngày", "From"),
    "merge_go": ("Sáp nhập", "Merge"),
    "saved": ("Đã lưu", "Saved"),
    "language": ("English", "Tiếng Việt"),
}

LEVEL_NAMES = {
    "province": ("Cấp tỉnh", "Province"),
    "department": ("Cấp sở, ban, ngành", "Departments"),
    "district": ("Cấp huyện", "District"),
    "commune": ("Cấp xã", "Commune"),
}

ROLE_NAMES = {
    "province_admin": ("Quản trị tỉnh", "Province administrator"),
    "unit_admin": ("Quản trị đơn vị", "Unit administrator"),
    "operator": ("Cán bộ số hóa", "Operator"),
    "viewer": ("Cán bộ tra cứu, lãnh đạo", "Official or leader"),
    "one_stop": ("Hệ thống một cửa", "One-stop system"),
    "signer": ("Người ký", "Signer"),
}


def _table(lang: str) -> dict[str, str]:
    i = 1 if lang == "en" else 0
    table = {key: pair[i] for key, pair in WORDS.items()}
    table.update({f"level_{k}": v[i] for k, v in LEVEL_NAMES.items()})
    table.update({f"role_{k}": v[i] for k, v in ROLE_NAMES.items()})
    return table


_TABLES = {lang: _table(lang) for lang in LANGUAGES}


def words(lang: str) -> dict[str, str]:
    """Every phrase in ``lang`` (Vietnamese unless it is English), made once, not per page."""
    return _TABLES["en" if lang == "en" else "vi"]
