"""Modbus TCP answers from serial-to-Ethernet gateways that carry unit id 255 (the
"not significant" value of the Modbus Messaging on TCP/IP Implementation Guide v1.0b,
4.4.2) instead of the unit asked, or the device's own id to a request for 255: taken when
the transaction id is the request's, refused otherwise. The answer ADUs are written out by
hand from that guide's MBAP layout (transaction id 2, protocol id 2 = 0, length 2 = unit +
PDU, unit 1) and the read-holding-registers PDU (03, byte count, registers)."""

from __future__ import annotations

from drivers.modbus.tcp import Unit255Framer, unit_variant

# transaction 0x0001, protocol 0, length 7 (unit + 03 + count + 2 registers), unit FF;
# 03, 4 bytes, registers 0x04D2 (1234) and 0xFFC8 (-56 as int16)
FROM_255 = bytes.fromhex("0001 0000 0007 FF 03 04 04D2 FFC8")


def test_an_answer_from_unit_255_is_the_asked_units_when_the_transaction_matches() -> None:
    f = Unit255Framer()
    used, pdu = f.handleFrame(FROM_255, 5, 1)
    assert used == 13 and pdu is not None
    assert (pdu.dev_id, pdu.transaction_id, list(pdu.registers)) == (5, 1, [1234, 0xFFC8])
    assert f.swapped == [(5, 255)]
    assert unit_variant(5, 255) == "unit 255 in the answer to unit 5 (serial-to-Ethernet gateway)"


def test_a_request_to_255_answered_by_the_device_itself() -> None:
    f = Unit255Framer()
    from_1 = bytes.fromhex("0009 0000 0005 01 03 02 0064")  # unit 1, one register: 100
    _, pdu = f.handleFrame(from_1, 255, 9)
    assert pdu is not None and list(pdu.registers) == [100] and pdu.dev_id == 255
    assert f.swapped == [(255, 1)]


def test_other_units_and_other_transactions_are_still_refused() -> None:
    f = Unit255Framer()
    assert f.handleFrame(FROM_255, 5, 2)[1] is None  # transaction 1 answers no request of ours
    from_7 = bytes.fromhex("0001 0000 0005 07 03 02 0064")
    assert f.handleFrame(from_7, 5, 1)[1] is None  # unit 7 for unit 5: neither is 255
    assert f.swapped == []
    exact = bytes.fromhex("0001 0000 0005 05 03 02 0064")
    _, pdu = f.handleFrame(exact, 5, 1)  # the standard case: no variant
    assert pdu is not None and list(pdu.registers) == [100] and f.swapped == []
