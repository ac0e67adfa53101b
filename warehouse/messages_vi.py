"""The API's errors in Vietnamese, for a caller that asks for them (``Accept-Language: vi``), as the
inspection findings already are. Keyed by the stable problem code; the English sentence, with the
request's own values, stays in ``detail_en``."""

from __future__ import annotations

TITLES = {
    400: "Yêu cầu không đọc được",
    401: "Chưa đăng nhập",
    403: "Không được phép",
    404: "Không tìm thấy",
    405: "Phương thức không được phép",
    408: "Gửi quá chậm",
    409: "Xung đột",
    410: "Không còn nữa",
    413: "Quá lớn",
    415: "Kiểu nội dung không được nhận",
    422: "Dữ liệu không hợp lệ",
    429: "Quá nhiều yêu cầu",
    500: "Lỗi bên trong kho",
    503: "Tạm thời không phục vụ được",
}

DETAILS = {
    # Signing in and accounts
    "unauthenticated": "Hãy đăng nhập trước: gửi mã đăng nhập (bearer token) hoặc khóa API.",
    "bad_credentials": "Tên đăng nhập hoặc mật khẩu không đúng.",
    "account_disabled": "Tài khoản đã bị khóa. Liên hệ quản trị viên của đơn vị.",
    "account_locked": "Đăng nhập sai quá nhiều lần từ máy này; hãy chờ một lúc rồi thử lại.",
    "too_many_sign_ins": "Quá nhiều lần đăng nhập từ địa chỉ này; hãy chờ một lúc rồi thử lại.",
    "sign_in_busy": "Kho đang kiểm tra nhiều lượt đăng nhập; hãy thử lại sau vài giây.",
    "password_change_required": "Hãy đổi mật khẩu dùng một lần trước (POST /api/v1/me/password).",
    "password_too_short": "Mật khẩu phải có ít nhất 10 ký tự.",
    "password_unchanged": "Mật khẩu mới phải khác mật khẩu hiện tại.",
    "wrong_current_password": "Mật khẩu hiện tại không đúng.",
    "forbidden": "Tài khoản của bạn không được làm việc này.",
    "account_not_found": "Không có tài khoản này trong các đơn vị bạn quản lý.",
    "api_key_not_found": "Không có khóa API này.",
    "login_taken": "Tên đăng nhập này đã được dùng; hãy chọn tên khác.",
    "invalid_login": "Tên đăng nhập có 2 đến 63 ký tự: chữ thường không dấu, chữ số, '.', '_' hoặc '-'.",
    "invalid_role": "Vai trò không hợp lệ, hoặc bạn không được cấp vai trò này.",
    "invalid_state": "Trạng thái chỉ là 'active' hoặc 'disabled'.",
    "invalid_limits": "Giới hạn là số nguyên từ 1 đến 1000000, cho đúng các khóa được phép.",
    "invalid_per_unit": "Số tài khoản mỗi đơn vị nằm ngoài khoảng cho phép.",
    "no_units": "Không có đơn vị nào đang hoạt động ở cấp này dưới đơn vị đã cho.",
    # Units and reports
    "unit_not_found": "Không có đơn vị này trong các đơn vị bạn được xem.",
    "unit_code_taken": "Mã đơn vị này đã có.",
    "unit_retired": "Đơn vị này đã được sáp nhập hoặc giải thể; hãy dùng đơn vị kế thừa.",
    "invalid_parent": "Đơn vị cấp trên không hợp lệ.",
    "invalid_level": "Cấp là department (sở, ngành), district (huyện) hoặc commune (xã).",
    "invalid_merge": "Không sáp nhập được như vậy: kiểm tra các đơn vị và ngày hiệu lực.",
    "invalid_move": "Không chuyển được đơn vị như vậy: kiểm tra đơn vị cấp trên mới.",
    "effective_in_future": "Ngày hiệu lực không được ở tương lai.",
    "missing_columns": "Tệp nhập thiếu cột bắt buộc.",
    "invalid_rows": "Một số dòng của tệp nhập không hợp lệ; nội dung lỗi nêu từng dòng.",
    "empty_import": "Tệp nhập không có dòng nào.",
    "import_too_large": "Tệp nhập quá lớn.",
    "invalid_year": "Năm phải từ 2000 đến 2100.",
    "invalid_label": "Hãy đặt tên cho khóa, từ 1 đến 100 ký tự (phần mềm nào dùng nó).",
    "invalid_date": "Ngày phải ghi theo dạng năm-tháng-ngày (YYYY-MM-DD).",
    "sign_in_fields_missing": "Hãy nhập tên đăng nhập và mật khẩu.",
    "dossier_fields_missing": "Hãy chọn thủ tục và nhập họ tên, số giấy tờ của người nộp.",
    "invalid_target_rate": "Chỉ tiêu là tỷ lệ từ 0 đến 1 (ví dụ 0.55 cho 55%).",
    "invalid_declared_total": "Tổng số hồ sơ phải là số nguyên không âm.",
    # Dossiers
    "dossier_not_found": "Không có hồ sơ này trong các đơn vị bạn được xem.",
    "dossier_code_taken": "Mã hồ sơ này đã có; hãy dùng mã khác hoặc để kho tự cấp.",
    "dossier_code_of_another_unit": "Mã hồ sơ phải bắt đầu bằng mã của đơn vị tiếp nhận.",
    "daily_sequence_exhausted": "Đơn vị đã tiếp nhận đủ 9999 hồ sơ trong ngày; hãy tự ghi mã cho hồ sơ này.",
    "invalid_id_kind": "Loại giấy tờ phải là cccd, cmnd, passport, mst hoặc other.",
    "invalid_id_number": "Số giấy tờ không đúng dạng của loại giấy tờ đã chọn.",
    "received_in_future": "Ngày tiếp nhận không được sau hôm nay.",
    "received_on_missing": "Không được xóa ngày tiếp nhận của hồ sơ.",
    "result_number_missing": "Kết quả cần có số kết quả (result.number).",
    "required_field_missing": "Không được xóa mã thủ tục hay họ tên chủ hồ sơ.",
    "issued_in_future": "Ngày cấp kết quả không được sau hôm nay.",
    "validity_before_issue": "Ngày hết hiệu lực không được trước ngày cấp.",
    "invalid_cursor": "Con trỏ phân trang không hợp lệ; hãy tải lại từ trang đầu.",
    "limit_too_large": "Số dòng mỗi trang quá lớn.",
    "invalid_fields": "Một số trường bị thiếu hoặc không hợp lệ; danh sách lỗi nêu từng trường.",
    "invalid_value": (
        "Có giá trị không lưu được (số quá lớn, hoặc văn bản chứa ký tự không cho phép); hãy sửa và gửi lại."
    ),
    "invalid_dossier_id": "Mã định danh hồ sơ không hợp lệ.",
    # Files and uploads
    "file_not_found": "Không có tệp này trong các đơn vị bạn được xem.",
    "not_a_pdf": "Tệp gửi lên không phải PDF. Hãy quét hoặc xuất lại thành PDF rồi gửi.",
    "empty_body": "Yêu cầu không kèm tệp. Hãy đính kèm tệp PDF rồi gửi lại.",
    "file_too_large": "Tệp lớn hơn mức kho nhận; hãy chia nhỏ hoặc quét với độ phân giải phù hợp.",
    "too_large": "Nội dung gửi lên lớn hơn mức kho nhận.",
    "form_too_large": "Biểu mẫu gửi lên có quá nhiều phần hoặc phần đầu quá lớn.",
    "body_too_large": "Nội dung gửi lên lớn hơn mức kho nhận.",
    "bad_multipart": "Không đọc được biểu mẫu multipart; hãy gửi lại.",
    "file_part_missing": "Biểu mẫu thiếu phần 'file' chứa tệp PDF.",
    "invalid_file_kind": "Loại tệp phải là component (thành phần) hoặc result (kết quả).",
    "bad_content_length": "Content-Length không phải số nguyên byte.",
    "body_length_mismatch": "Dữ liệu nhận được không khớp Content-Length; hãy gửi lại.",
    "checksum_mismatch": (
        "Mã SHA-256 của dữ liệu nhận được khác mã đã khai; tệp có thể bị hỏng trên đường truyền, hãy gửi lại."
    ),
    "invalid_checksum": "Mã SHA-256 phải có 64 ký tự hệ 16.",
    "size_mismatch": "Kích thước tệp nhận được khác kích thước đã khai.",
    "invalid_size": "Kích thước tệp không hợp lệ.",
    "invalid_mode": "Cách tải lên phải là parts hoặc direct.",
    "upload_not_found": "Không có phiên tải lên này.",
    "upload_not_open": "Phiên tải lên đã kết thúc; hãy mở phiên mới.",
    "upload_missing": "Kho chưa nhận được tệp của phiên tải lên trực tiếp này.",
    "upload_is_direct": "Phiên này tải thẳng lên kho lưu trữ, không nhận từng phần qua API.",
    "invalid_part_number": "Số thứ tự phần không hợp lệ.",
    "part_size_mismatch": "Kích thước phần không đúng kích thước của phiên.",
    "parts_missing": "Còn thiếu phần chưa gửi; danh sách phần thiếu có trong trạng thái phiên.",
    "upload_too_slow": "Tệp được gửi quá chậm nên kho đã dừng nhận; hãy gửi lại khi đường truyền tốt hơn.",
    "too_many_uploads": "Đang có quá nhiều lượt tải lên cùng lúc; hãy chờ rồi gửi lại.",
    "concurrent_uploads": "Đang có quá nhiều lượt tải lên cùng lúc; hãy chờ rồi gửi lại.",
    "rate_limited": "Quá nhiều yêu cầu; hãy chờ một lúc rồi thử lại.",
    "content_missing": "Dữ liệu của bản ghi này không còn trong kho lưu trữ; hãy báo quản trị viên.",
    "ocr_copy_missing": "Bản có lớp chữ (OCR) chưa có; hãy tải bản gốc.",
    # Retries
    "invalid_idempotency_key": "Idempotency-Key phải có 1 đến 200 ký tự ASCII in được.",
    "idempotency_key_reused": "Idempotency-Key này đã được dùng cho một yêu cầu khác.",
    "idempotency_in_progress": "Yêu cầu cùng Idempotency-Key đang được xử lý; hãy thử lại sau ít giây.",
    # Generic
    "bad_request": "Không đọc được yêu cầu; hãy kiểm tra định dạng rồi thử lại.",
    "not_found": "Không có gì ở địa chỉ này.",
    "method_not_allowed": "Địa chỉ này không nhận phương thức đó.",
    "unsupported_media_type": "Địa chỉ này không nhận kiểu nội dung đó.",
    "storage_unavailable": "Kho lưu trữ tệp tạm thời không trả lời. Chưa có gì được lưu; hãy thử lại sau ít phút.",
    "database_unavailable": "Cơ sở dữ liệu tạm thời không trả lời. Chưa có gì được lưu; hãy thử lại sau ít phút.",
    "queue_unavailable": "Hàng đợi xử lý tạm thời không trả lời. Chưa có gì được lưu; hãy thử lại sau ít phút.",
    "internal_error": "Có lỗi bên trong kho; yêu cầu chưa hoàn thành. Nếu lặp lại, hãy báo quản trị viên.",
    "http_error": "Yêu cầu không thực hiện được.",
    # The procedure catalogue
    "catalogue_columns_missing": "Dòng đầu của tệp phải có đủ tên các cột như tệp xuất danh mục.",
    "catalogue_empty": "Tệp danh mục không có dòng thủ tục nào.",
    "catalogue_invalid": "Chưa nhập gì: có ô cần sửa (xem dòng và cột trong 'errors').",
    "catalogue_too_large": "Bảng tính giải nén ra quá lớn; chỉ giữ trang danh mục.",
    "catalogue_too_many_rows": "Danh mục có quá nhiều dòng; hãy chia thành nhiều tệp.",
    "catalogue_unreadable": "Không đọc được bảng tính; hãy lưu lại dưới dạng .xlsx hoặc .csv.",
    "catalogue_unsupported_type": "Hãy gửi danh mục dạng CSV (text/csv) hoặc XLSX.",
    "catalogue_not_utf8": "Tệp CSV không ở mã UTF-8; hãy lưu dạng 'CSV UTF-8' rồi nhập lại.",
    "invalid_procedure_code": "Mã thủ tục có dạng 1.001234 hoặc 1.001234.000.00.00.H42.",
    "invalid_validity": "Thời hạn hiệu lực: 'months' cần số tháng, 'until' cần ngày hết hạn.",
    "procedure_not_found": "Thủ tục này chưa có trong danh mục.",
    "invalid_part_code": "Mã thành phần hoặc loại kết quả (ví dụ TP1, KQ1) có 1 đến 32 chữ, số, '.', '_' hoặc '-'.",
    "unknown_part_code": "Thủ tục của hồ sơ không có thành phần hoặc loại kết quả này (xem danh mục).",
    # Copies with legal standing
    "file_not_ready": "Chỉ ký được tệp đã qua kiểm tra; hãy chờ kết quả kiểm tra của tệp.",
    "file_too_large_to_sign": "Tệp quá lớn để ký số; hãy tách thành các tệp nhỏ hơn.",
    "signing_key_missing": "Đơn vị chưa được cài chứng thư số để ký; hãy báo quản trị viên cài tệp PKCS#12 của đơn vị.",
    "signing_key_unusable": "Không dùng được khóa ký số của đơn vị (tệp hỏng, sai mật khẩu); hãy báo quản trị viên.",
    "file_not_signable": "Cấu trúc tệp không cho phép thêm chữ ký số; hãy xuất hoặc scan lại tệp.",
    "signing_busy": "Các bộ ký số đang bận với tệp khác; hãy thử lại sau ít giây.",
    "signing_timeout": "Ký số mất quá nhiều thời gian; hãy thử lại sau.",
    "content_mismatch": "Tệp trong kho lưu trữ không khớp với bản ghi; hãy báo quản trị viên.",
    "too_many_signed_copies": "Tệp này đã có đủ số bản sao ký số cho phép; hãy dùng bản mới nhất.",
    "signed_copy_missing": "Tệp này chưa có bản sao đã ký số; người ký của đơn vị cần ký trước.",
    "result_not_found": "Không tìm thấy kết quả số hóa có mã này; hãy kiểm tra lại mã in cùng mã QR.",
    "checks_busy": "Đang có quá nhiều bản sao được kiểm tra cùng lúc; hãy thử lại sau ít giây.",
    "copy_too_large": "Bản sao gửi lên quá lớn để kiểm tra.",
    "copy_missing": "Hãy gửi kèm bản sao cần kiểm tra (tệp PDF).",
    "too_many_checks": "Địa chỉ của bạn đã tra cứu quá nhiều lần; hãy thử lại sau ít phút.",
    # Returns from the one-stop system
    "batch_too_large": "Lô gửi có quá nhiều hồ sơ; hãy chia thành các lô nhỏ hơn.",
    "empty_batch": "Lô gửi không có hồ sơ nào.",
    "invalid_batch": "Lô gửi phải là một mảng JSON, hoặc mỗi dòng một hồ sơ (NDJSON).",
    "invalid_item": "Hồ sơ này trong lô không hợp lệ (xem chi tiết tiếng Anh).",
    "invalid_json": "Dòng này không phải một đối tượng JSON; mỗi dòng gửi một hồ sơ.",
    "invalid_dossier_code": "Mã hồ sơ phải có dạng <mã đơn vị tiếp nhận>-YYMMDD-XXXX.",
    "dossier_code_date_mismatch": "Ngày trong mã hồ sơ khác ngày tiếp nhận; hãy gửi đúng mã và ngày một cửa đã cấp.",
    "duplicate_in_batch": "Hồ sơ này xuất hiện hai lần trong cùng lô; mỗi lô gửi mỗi hồ sơ một lần.",
    "dossier_deleted": "Hồ sơ này đã bị xóa trong kho; hỏi quản trị viên đơn vị trước khi gửi lại.",
    "invalid_returned_on": "Ngày trả kết quả phải từ ngày tiếp nhận đến hôm nay.",
    "procedure_not_in_force": "Không có phiên bản nào của thủ tục có hiệu lực vào ngày tiếp nhận.",
    "unknown_procedure": "Thủ tục chưa có trong danh mục của kho; đề nghị quản trị viên tỉnh nhập bổ sung.",
    "unknown_result_type": "Thủ tục này không có loại kết quả đó (xem danh mục).",
    "unknown_unit": "Không có đơn vị với mã này trong kho.",
    "unit_not_served": "Khóa này không được gửi hồ sơ cho đơn vị đó; đề nghị cấp khóa gắn với đơn vị.",
    "invalid_units": "Hãy nêu ít nhất một đơn vị cho khóa, hoặc bỏ trường 'units'.",
    "busy": "Một lượt gửi khác vừa ghi hồ sơ này; hãy gửi lại.",
    # Sharing: the change feed and push subscriptions
    "cursor_from_another_warehouse": "Con trỏ này của một kho khác; hãy đọc luồng thay đổi từ đầu (bỏ 'after').",
    "cursor_ahead": "Con trỏ vượt quá luồng thay đổi của kho (kho vừa được khôi phục); hãy đọc lại từ đầu.",
    "unknown_kind": "Loại thay đổi không có; xem danh sách các loại trong 'kinds'.",
    "subscription_not_found": "Không có đăng ký nhận tin này trong các đăng ký bạn quản lý.",
    "receiver_refused": "Địa chỉ nhận không dùng được (phải là https://, tên máy phân giải được, địa chỉ công khai).",
    # Keeping records: retention, legal holds, undoing a delete, purges
    "invalid_retention": "Thời hạn lưu trữ phải là 'permanent' (vĩnh viễn) hoặc số năm, ví dụ '10y'.",
    "retention_below_class": "Chỉ được kéo dài thời hạn lưu trữ, không được rút ngắn dưới thời hạn đang áp dụng.",
    "already_on_hold": "Hồ sơ hoặc đơn vị này đã đang bị phong tỏa (legal hold).",
    "hold_not_found": "Hồ sơ hoặc đơn vị này không bị phong tỏa.",
    "on_legal_hold": "Hồ sơ đang bị phong tỏa: không được xóa cho đến khi quản trị viên gỡ phong tỏa.",
    "not_deleted": "Hồ sơ hoặc tệp này chưa bị xóa.",
    "undo_window_passed": "Đã quá thời hạn được hoàn tác việc xóa; hồ sơ vẫn được lưu giữ.",
    "no_dossiers": "Hãy nêu các hồ sơ cần hủy (xem danh sách hồ sơ hết thời hạn lưu trữ).",
    "too_many_dossiers": "Một đợt hủy có quá nhiều hồ sơ; hãy chia thành nhiều đợt.",
    "not_purgeable": "Có hồ sơ không được hủy: chưa hết hạn lưu trữ, đang bị phong tỏa hoặc còn kết quả có hiệu lực.",
    "purge_not_found": "Không có đợt hủy này trong các đơn vị bạn quản lý.",
    "purge_not_proposed": "Đợt hủy này không ở trạng thái chờ duyệt.",
    "purge_needs_second_admin": "Đợt hủy phải được một quản trị viên khác duyệt.",
    "purge_not_approved": "Đợt hủy chỉ được thực hiện sau khi một quản trị viên khác đã duyệt.",
    "file_purged": "Tệp này đã bị hủy sau khi hết thời hạn lưu trữ; hồ sơ và mã kiểm tra của tệp vẫn được giữ.",
    "units_required": "Hãy nêu các đơn vị mà đăng ký nhận tin áp dụng (ít nhất một đơn vị).",
    "too_many_subscriptions": "Đơn vị của bạn đã có số đăng ký nhận tin tối đa; hãy xóa bớt một đăng ký.",
}


def wants_vietnamese(accept_language: str | None) -> bool:
    """Whether the caller prefers Vietnamese to English (``Accept-Language``, quality values honoured)."""
    best: tuple[float, str] = (0.0, "")
    for part in (accept_language or "").split(","):
        lang, _, params = part.strip().partition(";")
        quality = 1.0
        for param in params.split(";"):
            name, _, value = param.strip().partition("=")
            if name == "q":
                try:
                    quality = float(value)
                except ValueError:
                    quality = 0.0
        primary = lang.strip().lower().split("-")[0]
        if primary in ("vi", "en") and quality > best[0]:
            best = (quality, primary)
    return best[1] == "vi"
