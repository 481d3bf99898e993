"""Busy polling: after a request the worker's event loop polls instead of sleeping, for a
bounded window, and sleeps again when traffic stops."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from basketry.serving import Settings, SettingsError
from basketry.serving.app import create_app
from basketry.serving.busy_poll import BusyPoll


def _loops() -> list[pytest.param]:
    loops = [pytest.param(asyncio.new_event_loop, id="asyncio")]
    try:
        import uvloop
    except ImportError:  # pragma: no cover - uvloop comes with the serve extra
        return loops
    return [*loops, pytest.param(uvloop.new_event_loop, id="uvloop")]


@pytest.mark.parametrize("new_loop", _loops())
def test_polls_for_the_window_after_a_request_then_sleeps(new_loop) -> None:
    loop = new_loop()
    try:
        poll = BusyPoll(loop, window=0.02)

        async def main() -> tuple[bool, int, bool, int, int, bool]:
            poll.touch()
            polling_at_once = poll.polling
            await asyncio.sleep(0.005)  # inside the window: the loop turns without waiting
            turns_inside = poll.turns
            await asyncio.sleep(0.05)  # past the window: polling stopped by itself
            stopped = not poll.polling
            after_window = poll.turns
            await asyncio.sleep(0.05)  # and the loop sleeps: no turn counted any more
            idle_turns = poll.turns - after_window
            poll.touch()  # a new request starts it again
            await asyncio.sleep(0.001)
            return polling_at_once, turns_inside, stopped, after_window, idle_turns, poll.polling

        at_once, turns_inside, stopped, after_window, idle_turns, again = \
            loop.run_until_complete(main())
    finally:
        loop.close()
    assert at_once and turns_inside > 10  # many turns in 5 ms: the loop did not block
    assert stopped and after_window >= turns_inside
    assert idle_turns == 0
    assert again


def test_touches_inside_the_window_extend_it_without_a_second_poller() -> None:
    async def main() -> tuple[int, bool]:
        loop = asyncio.get_running_loop()
        poll = BusyPoll(loop, window=0.01)
        for _ in range(5):
            poll.touch()
            await asyncio.sleep(0.004)  # each touch lands inside the window of the last
        still = poll.polling
        ready = len(getattr(loop, "_ready", []))  # one polling callback at most
        await asyncio.sleep(0.03)
        return ready, still and not poll.polling

    ready, extended_then_stopped = asyncio.run(main())
    assert ready <= 1
    assert extended_then_stopped


def test_window_zero_never_polls() -> None:
    async def main() -> tuple[bool, int]:
        poll = BusyPoll(asyncio.get_running_loop(), window=0.0)
        poll.touch()
        await asyncio.sleep(0.005)
        return poll.polling, poll.turns

    assert asyncio.run(main()) == (False, 0)


def test_setting_from_the_environment(model_dir: Path) -> None:
    assert Settings().busy_poll_us == 200
    assert Settings.from_env({"BASKETRY_BUSY_POLL_US": "0"}).busy_poll_us == 0
    with pytest.raises(SettingsError, match="BASKETRY_BUSY_POLL_US"):
        Settings.from_env({"BASKETRY_BUSY_POLL_US": "-5"})

    async def polls(settings: Settings) -> tuple[BusyPoll | None, BusyPoll | None]:
        app = create_app(settings)
        loop = asyncio.get_running_loop()
        return app.busy_poll(loop), app.busy_poll(loop)

    first, second = asyncio.run(polls(Settings(model=str(model_dir))))
    assert first is second and first is not None and first.window == pytest.approx(200e-6)
    assert asyncio.run(polls(Settings(model=str(model_dir), busy_poll_us=0))) == (None, None)


def test_the_protocol_touches_the_poller_on_every_read(model_dir: Path) -> None:
    from uvicorn.config import Config
    from uvicorn.server import ServerState

    from basketry.serving.protocol import DirectHttpToolsProtocol

    from .test_fast_parts import _Transport

    app = create_app(Settings(model=str(model_dir), busy_poll_us=50_000))
    app.holder.load_initial()
    body = b'{"basket": ["a"], "k": 2}'
    request = (b"POST /v1/recommendations HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n%s"
               % (len(body), body))

    async def main() -> tuple[bool, bool, bool]:
        config = Config(app=app, http=DirectHttpToolsProtocol, log_config=None,
                        proxy_headers=False)
        config.load()
        transport = _Transport()
        transport.get_extra_info = lambda name: None  # type: ignore[method-assign]
        protocol = DirectHttpToolsProtocol(config=config, server_state=ServerState(),
                                           app_state={})
        protocol.connection_made(transport)  # type: ignore[arg-type]
        poll = app.busy_poll(asyncio.get_running_loop())
        before = poll.polling
        protocol.data_received(request)
        during = poll.polling
        await asyncio.sleep(0.01)
        protocol.connection_lost(None)
        return before, during, poll.turns > 0

    before, during, turned = asyncio.run(main())
    assert not before and during and turned
