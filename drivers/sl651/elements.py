"""SL 651-2014 tables: elements (appendix C, table C.1), station types (A.1), function
codes (B.1), parameters (D.1, D.4), status bits (table 58) and event records (table 82).

Each element: identifier byte -> (symbol, unit, digits D, decimals d) from its `N(D,d)`.
In HEX/BCD frames the decimals actually used are those of the definition byte; the
table's are the standard's nominal ones (shown, and used by the ASCII mode's encoder).
"""

from __future__ import annotations

from typing import NamedTuple


class Spec(NamedTuple):
    symbol: str
    name: str  # the standard's Chinese name
    unit: str | None
    digits: int  # D of N(D,d); 0 where the data is not a decimal number
    decimals: int


def _s(symbol: str, name: str, unit: str | None, digits: int = 0, decimals: int = 0) -> Spec:
    return Spec(symbol, name, unit, digits, decimals)


ELEMENTS: dict[int, Spec] = {
    0xF0: _s("TT", "观测时间引导符", None, 10),
    0xF1: _s("ST", "测站编码引导符", None, 10),
    0xF2: _s("RGZS", "人工置数", None),
    0xF3: _s("PIC", "图片信息", "KB"),
    0xF4: _s("DRP", "1小时内每5分钟时段雨量", "mm"),
    0xF5: _s("DRZ1", "1小时内5分钟间隔相对水位1", "m"),
    0xF6: _s("DRZ2", "1小时内5分钟间隔相对水位2", "m"),
    0xF7: _s("DRZ3", "1小时内5分钟间隔相对水位3", "m"),
    0xF8: _s("DRZ4", "1小时内5分钟间隔相对水位4", "m"),
    0xF9: _s("DRZ5", "1小时内5分钟间隔相对水位5", "m"),
    0xFA: _s("DRZ6", "1小时内5分钟间隔相对水位6", "m"),
    0xFB: _s("DRZ7", "1小时内5分钟间隔相对水位7", "m"),
    0xFC: _s("DRZ8", "1小时内5分钟间隔相对水位8", "m"),
    0xFD: _s("DATA", "流速批量数据传输", None),
    0x01: _s("AC", "断面面积", "m²", 8, 2),
    0x02: _s("AI", "瞬时气温", "°C", 3, 1),
    0x03: _s("C", "瞬时水温", "°C", 3, 1),
    0x04: _s("DRxnn", "时间步长码", None, 3),
    0x05: _s("DT", "时段长(降水、引排水、抽水历时)", "h", 4, 2),
    0x06: _s("ED", "日蒸发量", "mm", 5, 1),
    0x07: _s("EJ", "当前蒸发", "mm", 5, 1),
    0x08: _s("FL", "气压", "hPa", 5),
    0x09: _s("GH", "闸坝、水库闸门开启高度", "m", 5, 2),
    0x0A: _s("GN", "输水设备、闸门(组)编号", None, 3),
    0x0B: _s("GS", "输水设备类别", None, 1),
    0x0C: _s("GT", "水库、闸坝闸门开启孔数", "孔", 3),
    0x0D: _s("GTP", "地温", "°C", 3, 1),
    0x0E: _s("H", "地下水瞬时埋深", "m", 6, 2),
    0x0F: _s("HW", "波浪高度", "m", 5, 2),
    **{
        0x10 + i: _s(f"M{depth}", f"{depth}厘米处土壤含水量", "%", 4, 1)
        for i, depth in enumerate((10, 20, 30, 40, 50, 60, 80, 100))
    },
    0x18: _s("MST", "湿度", "%", 4, 1),
    0x19: _s("NS", "开机台数", "台", 2),
    0x1A: _s("P1", "1小时时段降水量", "mm", 5, 1),
    0x1B: _s("P2", "2小时时段降水量", "mm", 5, 1),
    0x1C: _s("P3", "3小时时段降水量", "mm", 5, 1),
    0x1D: _s("P6", "6小时时段降水量", "mm", 5, 1),
    0x1E: _s("P12", "12小时时段降水量", "mm", 5, 1),
    0x1F: _s("PD", "日降水量", "mm", 5, 1),
    0x20: _s("PJ", "当前降水量", "mm", 5, 1),
    0x21: _s("PN01", "1分钟时段降水量", "mm", 5, 1),
    0x22: _s("PN05", "5分钟时段降水量", "mm", 5, 1),
    0x23: _s("PN10", "10分钟时段降水量", "mm", 5, 1),
    0x24: _s("PN30", "30分钟时段降水量", "mm", 5, 1),
    0x25: _s("PR", "暴雨量", "mm", 5, 1),
    0x26: _s("PT", "降水量累计值", "mm", 6, 1),
    0x27: _s("Q", "瞬时流量、抽水流量", "m³/s", 9, 3),
    **{0x28 + i: _s(f"Q{i + 1}", f"取(排)水口流量{i + 1}", "m³/s", 9, 3) for i in range(8)},
    0x30: _s("QA", "总出库流量、过闸总流量", "m³/s", 9, 3),
    0x31: _s("QZ", "输水设备流量、过闸(组)流量", "m³/s", 9, 3),
    0x32: _s("SW", "输沙量", "万吨", 11, 3),
    0x33: _s("UC", "风向", None, 2),
    0x34: _s("UE", "风力(级)", None, 2),
    0x35: _s("US", "风速", "m/s", 4, 1),
    0x36: _s("VA", "断面平均流速", "m/s", 5, 3),
    0x37: _s("VJ", "当前瞬时流速", "m/s", 5, 3),
    0x38: _s("VT", "电源电压", "V", 4, 2),
    0x39: _s("Z", "瞬时河道水位、潮位", "m", 7, 3),
    0x3A: _s("ZB", "库(闸、站)下水位", "m", 7, 3),
    0x3B: _s("ZU", "库(闸、站)上水位", "m", 7, 3),
    **{0x3C + i: _s(f"Z{i + 1}", f"取(排)水口水位{i + 1}", "m", 7, 3) for i in range(8)},
    0x44: _s("SQ", "含沙量", "kg/m³", 9, 3),
    0x45: _s("ZT", "遥测站状态及报警信息", None),
    0x46: _s("pH", "pH值", None, 4, 2),
    0x47: _s("DO", "溶解氧", "mg/L", 4, 1),
    0x48: _s("COND", "电导率", "μS/cm", 5),
    0x49: _s("TURB", "浊度", "度", 3),
    0x4A: _s("CODMN", "高锰酸盐指数", "mg/L", 4, 1),
    0x4B: _s("REDOX", "氧化还原电位", "mV", 5, 1),
    0x4C: _s("NH4N", "氨氮", "mg/L", 6, 2),
    0x4D: _s("TP", "总磷", "mg/L", 5, 3),
    0x4E: _s("TN", "总氮", "mg/L", 5, 2),
    0x4F: _s("TOC", "总有机碳", "mg/L", 4, 2),
    0x50: _s("CU", "铜", "mg/L", 7, 4),
    0x51: _s("ZN", "锌", "mg/L", 6, 4),
    0x52: _s("SE", "硒", "mg/L", 7, 5),
    0x53: _s("AS", "砷", "mg/L", 7, 5),
    0x54: _s("THG", "总汞", "mg/L", 7, 5),
    0x55: _s("CD", "镉", "mg/L", 7, 5),
    0x56: _s("PB", "铅", "mg/L", 7, 5),
    0x57: _s("CHLA", "叶绿素a", "mg/L", 4, 2),
    **{0x58 + i: _s(f"WP{i + 1}", f"水压{i + 1}", "kPa", 5, 2) for i in range(8)},
    **{0x60 + i: _s(f"SYL{i + 1}", f"水表{i + 1}剩余水量", "m³", 11, 3) for i in range(8)},
    **{0x68 + i: _s(f"SBL{i + 1}", f"水表{i + 1}每小时水量", "m³/h", 10, 2) for i in range(8)},
    0x70: _s("VTA", "交流A相电压", "V", 4, 1),
    0x71: _s("VTB", "交流B相电压", "V", 4, 1),
    0x72: _s("VTC", "交流C相电压", "V", 4, 1),
    0x73: _s("VIA", "交流A相电流", "A", 4, 1),
    0x74: _s("VIB", "交流B相电流", "A", 4, 1),
    0x75: _s("VIC", "交流C相电流", "A", 4, 1),
}
BY_SYMBOL: dict[str, int] = {spec.symbol: code for code, spec in ELEMENTS.items()}

ARRAYS = range(0xF4, 0xFD)
"""F4 DRP (12 × 1 byte HEX, 0.1 mm) and F5–FC DRZ1–DRZ8 (12 × 2 bytes HEX, 0.01 m)."""


def array_value_name(code: int) -> str:
    """What each value of an array is a value of: PN05 for DRP, Z for DRZ1, else DRZn."""
    return {0xF4: "PN05", 0xF5: "Z"}.get(code, ELEMENTS[code].symbol)


STATION_TYPES: dict[int, tuple[str, str]] = {  # table A.1: HEX code -> (ASCII char, 类别)
    0x50: ("P", "降水"),
    0x48: ("H", "河道"),
    0x4B: ("K", "水库(湖泊)"),
    0x5A: ("Z", "闸坝"),
    0x44: ("D", "泵站"),
    0x54: ("T", "潮汐"),
    0x4D: ("M", "墒情"),
    0x47: ("G", "地下水"),
    0x51: ("Q", "水质"),
    0x49: ("I", "取水口"),
    0x4F: ("O", "排水口"),
}

FUNCTIONS: dict[int, str] = {  # table B.1
    0x2F: "链路维持报",
    0x30: "测试报",
    0x31: "均匀时段水文信息报",
    0x32: "遥测站定时报",
    0x33: "遥测站加报报",
    0x34: "遥测站小时报",
    0x35: "遥测站人工置数报",
    0x36: "遥测站图片报/查询图片",
    0x37: "查询实时数据",
    0x38: "查询时段数据",
    0x39: "查询人工置数",
    0x3A: "查询指定要素数据",
    0x40: "修改基本配置表",
    0x41: "读取基本配置表",
    0x42: "修改运行参数配置表",
    0x43: "读取运行参数配置表",
    0x44: "查询水泵电机实时工作数据",
    0x45: "查询软件版本",
    0x46: "查询状态和报警信息",
    0x47: "初始化固态存储数据",
    0x48: "恢复出厂设置",
    0x49: "修改密码",
    0x4A: "设置时钟",
    0x4B: "设置IC卡状态",
    0x4C: "水泵开关/状态自报",
    0x4D: "阀门开关/状态自报",
    0x4E: "闸门开关/状态自报",
    0x4F: "水量定值控制",
    0x50: "查询事件记录",
    0x51: "查询时钟",
}

PARAMETERS: dict[int, str] = {  # D.1 basic configuration (40/41), D.4 running (42/43)
    0x01: "中心站地址",
    0x02: "遥测站地址",
    0x03: "密码",
    0x04: "中心站1主信道",
    0x05: "中心站1备用信道",
    0x06: "中心站2主信道",
    0x07: "中心站2备用信道",
    0x08: "中心站3主信道",
    0x09: "中心站3备用信道",
    0x0A: "中心站4主信道",
    0x0B: "中心站4备用信道",
    0x0C: "工作方式",
    0x0D: "采集要素设置",
    0x0E: "中继站服务地址范围",
    0x0F: "通信设备识别号",
}
RUNNING: dict[int, str] = {
    0x20: "定时报时间间隔(h)",
    0x21: "加报时间间隔(min)",
    0x22: "降水量日起始时间(h)",
    0x23: "采样间隔(s)",
    0x24: "水位数据存储间隔(min)",
    0x25: "雨量计分辨力(mm)",
    0x26: "水位计分辨力(cm)",
    0x27: "雨量加报阈值(mm)",
    **{0x28 + i: f"水位基值{i + 1}(m)" for i in range(8)},
    **{0x30 + i: f"水位修正基值{i + 1}(m)" for i in range(8)},
    **{0x38 + i: f"加报水位{i + 1}(m)" for i in range(8)},
    0x40: "加报水位以上加报阈值(m)",
    0x41: "加报水位以下加报阈值(m)",
    0x42: "流量加报阈值(m³/s)",
    0x43: "流速加报阈值(m/s)",
    0x44: "闸位加报阈值(m)",
    0x45: "功率加报阈值(kW)",
    0x46: "气压加报阈值(hPa)",
    0x47: "风速加报阈值(m/s)",
    0x48: "水温加报阈值(°C)",
}

STATUS_BITS: tuple[tuple[str, str, str], ...] = (  # table 58: (name, 0, 1)
    ("交流电充电状态", "正常", "停电"),
    ("蓄电池电压状态", "正常", "电压低"),
    ("水位超限报警状态", "正常", "报警"),
    ("流量超限报警状态", "正常", "报警"),
    ("水质超限报警状态", "正常", "报警"),
    ("流量仪表状态", "正常", "故障"),
    ("水位仪表状态", "正常", "故障"),
    ("终端箱门状态", "开启", "关闭"),
    ("存储器状态", "正常", "异常"),
    ("IC卡功能有效", "关闭", "IC卡有效"),
    ("水泵工作状态", "水泵工作", "水泵停机"),
    ("剩余水量报警", "未超限", "水量超限"),
)


def status_text(bits: int) -> str:
    """Table 58 reading of a 4-byte status word, e.g. '交流电充电状态=正常; …'."""
    return "; ".join(
        f"{name}={one if bits >> k & 1 else zero}"
        for k, (name, zero, one) in enumerate(STATUS_BITS)
    )


EVENTS: tuple[str, ...] = (  # table 82, ERC1…ERC18 (ERC19–32 reserved)
    "历史数据初始化记录",
    "参数变更记录",
    "状态量变位记录",
    "传感器及仪表故障记录",
    "密码修改记录",
    "终端故障记录",
    "交流失电记录",
    "蓄电池电压低告警记录",
    "终端箱非法打开记录",
    "水泵故障记录",
    "剩余水量超限告警记录",
    "水位超限告警记录",
    "水压超限告警记录",
    "水质参数超限告警记录",
    "数据出错记录",
    "发报文记录",
    "收报文记录",
    "发报文出错记录",
)
