"""The GSM AT codec: UCS2 both ways, message listings, codes in replies, one-SMS length."""

from __future__ import annotations

from gateway.notify.gsm import (
    Sms,
    cmti_index,
    find_code,
    fit,
    from_ucs2,
    parse_cmgl,
    parse_cmgr,
    ucs2,
)


def test_ucs2_round_trip_including_beyond_the_bmp() -> None:
    assert ucs2("收到") == "65365230"
    assert ucs2("+86138") == "002B00380036003100330038"
    assert from_ucs2("65365230") == "收到"
    assert from_ucs2(ucs2("雨𠀀")) == "雨𠀀"  # a surrogate pair survives
    assert from_ucs2("OK then") == "OK then"  # not UCS2: as it is
    assert from_ucs2("D800") == "D800"  # a lone surrogate is not text


def test_listings_and_notifications() -> None:
    lines = [
        f'+CMGL: 3,"{ucs2("REC UNREAD")}","{ucs2("+8613800000001")}",,"26/11/29,08:00:00+32"',
        ucs2("收到0012"),
        f'+CMGL: 5,"{ucs2("REC UNREAD")}","{ucs2("10086")}",,"26/11/29,08:01:00+32"',
        ucs2("话费余额"),
    ]
    assert parse_cmgl(lines) == [Sms(3, "+8613800000001", "收到0012"), Sms(5, "10086", "话费余额")]
    header = f'+CMGR: "{ucs2("REC UNREAD")}","{ucs2("13800000002")}",,"26/11/29,08:00:00+32"'
    assert parse_cmgr(7, [header, ucs2("好的 0003")]) == Sms(7, "13800000002", "好的 0003")
    assert parse_cmgr(7, ["+CMS ERROR: 321"]) is None
    assert cmti_index('+CMTI: "SM",12') == 12
    assert cmti_index("RING") is None


def test_codes_and_length() -> None:
    assert find_code("收到0012，马上到") == "0012"
    assert find_code("0012") == "0012"
    assert find_code("电话13800000001 收到 0045") == "0045"  # a phone number is no code
    assert find_code("收到") is None
    assert find_code("123") is None
    long = "预警" * 50
    cut = fit(long)
    assert len(cut.encode("utf-16-be")) // 2 == 70 and cut.endswith("…")
    assert fit("短信") == "短信"
