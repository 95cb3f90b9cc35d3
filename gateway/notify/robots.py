"""Group robots: DingTalk, WeCom (企业微信) and Feishu (飞书) custom robots, each as its
documentation specifies.

- DingTalk (open.dingtalk.com, 自定义机器人安全设置 · 加签): `timestamp` in milliseconds and
  `sign` = URL-encoded Base64 of HMAC-SHA256, keyed by the secret, over
  `timestamp + "\\n" + secret`, both as query parameters of the webhook URL; a markdown
  message, `at.atMobiles` with the responsible people's mobile numbers (their numbers
  also in the text, which DingTalk requires for the @ to show).
- WeCom (developer.work.weixin.qq.com/document/path/91770, 群机器人配置说明): the key is in
  the URL; a text message with `mentioned_mobile_list` (markdown cannot @ by mobile), at
  most 2,048 bytes.
- Feishu (open.feishu.cn, 自定义机器人使用指南 · 签名校验): `timestamp` in seconds and
  `sign` = Base64 of HMAC-SHA256 keyed by `timestamp + "\\n" + secret` over an empty
  message, both in the JSON body; a text message.

Each robot has its own queue and sender task: at most `per_minute` (20, the services'
limit) messages in any 60 s; what waits meanwhile is merged into one message when the
window opens, so nothing is lost and a storm costs a few messages. A robot that is
throttled or failing is in `status()` (the page, `/api/deliveries`) and `/metrics`; it
never delays SMS or voice (other channels have their own workers), nor another robot.
The service's error code is shown in words.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import hmac
import json
import logging
import time
import urllib.error
import urllib.parse
import urllib.request
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge

from gateway.config.loop import Robot
from gateway.notify.base import Delivery, DeliveryError

log = logging.getLogger("stationgw.notify.robots")

# the services' error codes a station meets, in words
ERRORS = {
    ("dingtalk", 310000): "签名不匹配或关键词/IP 不符（secret 错误？）",
    ("dingtalk", 130101): "发送太快（每分钟 20 条）",
    ("dingtalk", 300001): "access_token 无效",
    ("dingtalk", 400013): "群已解散",
    ("wecom", 93000): "webhook key 无效",
    ("wecom", 45009): "发送太快（每分钟 20 条）",
    ("wecom", 40058): "消息内容不合法",
    ("feishu", 19021): "签名校验失败（secret 错误或时间戳过期）",
    ("feishu", 9499): "请求格式错误",
    ("feishu", 11232): "发送太快（频率受限）",
    ("feishu", 19024): "关键词校验失败",
}
THROTTLED = {("dingtalk", 130101), ("wecom", 45009), ("feishu", 11232)}


def dingtalk_sign(secret: str, timestamp_ms: int) -> str:
    digest = hmac.new(
        secret.encode(), f"{timestamp_ms}\n{secret}".encode(), hashlib.sha256
    ).digest()
    return urllib.parse.quote_plus(base64.b64encode(digest))


def feishu_sign(secret: str, timestamp_s: int) -> str:
    digest = hmac.new(f"{timestamp_s}\n{secret}".encode(), b"", hashlib.sha256).digest()
    return base64.b64encode(digest).decode()


def request(robot: Robot, text: str, mentions: Sequence[str], now_ms: int) -> tuple[str, bytes]:
    """The URL and JSON body of one message (pure; time passed in)."""
    url = robot.url
    mobiles = list(dict.fromkeys(mentions)) if robot.mention else []
    body: dict[str, Any]
    if robot.kind == "dingtalk":
        if robot.secret:
            sep = "&" if "?" in url else "?"
            url += f"{sep}timestamp={now_ms}&sign={dingtalk_sign(robot.secret, now_ms)}"
        at = "".join(f" @{m}" for m in mobiles)
        title = text.splitlines()[0].lstrip("# ") if text else "预警"
        body = {
            "msgtype": "markdown",
            "markdown": {"title": title, "text": text + ("\n\n" + at.strip() if at else "")},
            "at": {"atMobiles": mobiles, "isAtAll": False},
        }
    elif robot.kind == "wecom":
        plain = text.replace("### ", "").replace("- ", "")
        data = plain.encode()[:2040].decode(errors="ignore")  # 2,048 bytes at most
        body = {"msgtype": "text", "text": {"content": data, "mentioned_mobile_list": mobiles}}
    else:
        plain = text.replace("### ", "").replace("- ", "")
        body = {"msg_type": "text", "content": {"text": plain}}
        if robot.secret:
            ts = now_ms // 1000
            body = {"timestamp": str(ts), "sign": feishu_sign(robot.secret, ts), **body}
    return url, json.dumps(body, ensure_ascii=False).encode()


def answer_error(kind: str, status: int, payload: bytes) -> tuple[str | None, bool]:
    """(error in words or None, throttled) of a service's answer."""
    if not 200 <= status < 300:
        return f"HTTP {status}", status == 429
    try:
        doc = json.loads(payload or b"{}")
    except ValueError:
        return "answer is not JSON", False
    code = (
        doc.get("errcode", doc.get("code", doc.get("StatusCode", 0)))
        if isinstance(doc, dict)
        else 0
    )
    if not code:
        return None, False
    msg = doc.get("errmsg") or doc.get("msg") or ""
    words = ERRORS.get((kind, int(code)), "")
    return f"{kind} 错误 {code} {words} ({msg})".replace("  ", " "), (kind, int(code)) in THROTTLED


@dataclass
class _Waiting:
    text: str
    mentions: list[str]
    done: asyncio.Future[None]


@dataclass
class _Robot:
    cfg: Robot
    queue: deque[_Waiting] = field(default_factory=deque)
    sent_at: deque[float] = field(default_factory=deque)  # monotonic times in the window
    wake: asyncio.Event = field(default_factory=asyncio.Event)
    throttled: bool = False
    last_error: str | None = None
    task: asyncio.Task[None] | None = None


def merge(items: Sequence[tuple[str, Sequence[str]]]) -> tuple[str, list[str]]:
    """Messages that waited for the rate limit, as one: numbered, everyone mentioned."""
    if len(items) == 1:
        return items[0][0], list(items[0][1])
    text = f"【{len(items)} 条预警合并发送】\n\n" + "\n\n".join(
        f"{i}. {t}" for i, (t, _) in enumerate(items, 1)
    )
    mentions = list(dict.fromkeys(m for _, ms in items for m in ms))
    return text, mentions


class RobotChannel:
    name = "robot"
    concurrent = True  # each delivery waits in its robot's queue; robots do not wait on each other

    def __init__(
        self,
        robots: Sequence[Robot],
        *,
        registry: CollectorRegistry | None = None,
        clock_ms: Callable[[], int] = lambda: int(time.time() * 1000),
        window_s: float = 60.0,
    ) -> None:
        self.robots = {r.id: _Robot(r) for r in robots}
        self.clock_ms = clock_ms
        self.window_s = window_s
        self.timeout_s = 300.0  # a throttled message may wait up to a window and a merge
        self.requests: list[tuple[str, str, bytes]] = []  # robot id, URL, body (the newest 100)
        reg = registry or CollectorRegistry()
        self.m_sent = Counter(
            "stationgw_robot_messages",
            "Robot messages posted per robot and result",
            ["robot", "result"],
            registry=reg,
        )
        self.m_merged = Counter(
            "stationgw_robot_merged",
            "Deliveries merged into another message (rate limit)",
            ["robot"],
            registry=reg,
        )
        self.m_throttled = Gauge(
            "stationgw_robot_throttled",
            "1 while a robot waits for its rate limit",
            ["robot"],
            registry=reg,
        )
        self.m_failing = Gauge(
            "stationgw_robot_failing",
            "1 while a robot's last message failed",
            ["robot"],
            registry=reg,
        )

    def status(self) -> dict[str, object]:
        return {
            "robots": {
                rid: {
                    "name": r.cfg.name or rid,
                    "kind": r.cfg.kind,
                    "queued": len(r.queue),
                    "throttled": r.throttled,
                    "last_error": r.last_error,
                }
                for rid, r in self.robots.items()
            }
        }

    async def start(self) -> None:
        for rid, r in self.robots.items():
            r.task = asyncio.create_task(self._sender(r), name=f"robot-{rid}")

    async def stop(self) -> None:
        for r in self.robots.values():
            if r.task is not None:
                r.task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await r.task

    async def send(self, d: Delivery) -> None:
        r = self.robots.get(d.target)
        if r is None:
            raise DeliveryError(f"no robot {d.target!r} in [[notify.robots]]")
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        r.queue.append(
            _Waiting(str(d.body.get("text") or ""), list(d.body.get("mentions") or []), fut)
        )
        r.wake.set()
        await fut

    async def _sender(self, r: _Robot) -> None:
        while True:
            if not r.queue:
                r.wake.clear()
                await r.wake.wait()
                continue
            now = time.monotonic()
            while r.sent_at and now - r.sent_at[0] >= self.window_s:
                r.sent_at.popleft()
            if len(r.sent_at) >= r.cfg.per_minute:
                if not r.throttled:
                    log.warning(
                        "robot %s: %d messages in the last minute, waiting (merging)",
                        r.cfg.id,
                        len(r.sent_at),
                    )
                r.throttled = True
                self.m_throttled.labels(r.cfg.id).set(1)
                await asyncio.sleep(self.window_s - (now - r.sent_at[0]) + 0.01)
                continue
            batch = list(r.queue)
            r.queue.clear()
            text, mentions = merge([(w.text, w.mentions) for w in batch])
            if len(batch) > 1:
                self.m_merged.labels(r.cfg.id).inc(len(batch) - 1)
            r.sent_at.append(time.monotonic())
            try:
                error, throttled = await asyncio.to_thread(self._post, r.cfg, text, mentions)
            except Exception as e:  # a bug here must not stop this robot's sender
                log.exception("robot %s: sending failed", r.cfg.id)
                error, throttled = f"{type(e).__name__}: {e}", False
            r.throttled = throttled
            self.m_throttled.labels(r.cfg.id).set(1 if throttled else 0)
            if error != r.last_error and error is not None:
                log.warning("robot %s (%s): %s", r.cfg.id, r.cfg.kind, error)
            r.last_error = error
            self.m_failing.labels(r.cfg.id).set(1 if error else 0)
            self.m_sent.labels(r.cfg.id, "sent" if error is None else "failed").inc()
            for w in batch:
                if w.done.done():
                    continue
                if error is None:
                    w.done.set_result(None)
                else:
                    w.done.set_exception(
                        DeliveryError(error, outcome="throttled" if throttled else "failed")
                    )

    def _post(self, robot: Robot, text: str, mentions: list[str]) -> tuple[str | None, bool]:
        url, data = request(robot, text, mentions, self.clock_ms())
        self.requests = [*self.requests[-99:], (robot.id, url, data)]
        req = urllib.request.Request(
            url,
            data=data,
            method="POST",
            headers={"Content-Type": "application/json; charset=utf-8"},
        )
        try:
            with urllib.request.urlopen(req, timeout=robot.timeout_s) as resp:
                return answer_error(robot.kind, resp.status, resp.read(65536))
        except urllib.error.HTTPError as e:
            return answer_error(robot.kind, e.code, b"")
        except (urllib.error.URLError, OSError) as e:
            return f"{robot.kind} unreachable: {getattr(e, 'reason', e)}", False
