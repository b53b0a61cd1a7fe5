"""The server side of live streams, sans-I/O: what ``ServerConnection`` delegates ``live_*`` messages and
``live`` tiles to. It checks the wire (stream known, frame numbers increasing, each tile one cell of the grid,
each cell at most once, a full frame complete) and hands over ``LiveFrameReady`` once a frame's tiles are all
in; the pixels themselves (base, hashes, latest wins) are the server's job (``server.jobs.live``)."""

from __future__ import annotations

from dataclasses import dataclass, field

from . import errors
from .errors import ProtocolError
from .frames import Frame
from .geometry import Rect
from .live import cell_of, grid
from .live_messages import LiveError, LiveFrameMessage, LiveStart, LiveStop, LiveStopped
from .messages import Message
from .vocabulary import MAX_LIVE_STREAMS, MAX_TILES


@dataclass(frozen=True)
class LiveFrameReady:
    """A live frame whose tiles have all arrived: ``tiles`` are in arrival order, each one grid cell."""

    stream: str
    message: LiveFrameMessage
    tiles: tuple[Frame, ...]

    @property
    def region(self) -> Rect:
        m = self.message
        return Rect(m.x, m.y, m.width, m.height)


@dataclass
class _Incoming:
    message: LiveFrameMessage
    cells: int  # cells of the frame's grid
    tiles: dict[int, Frame] = field(default_factory=dict)  # cell -> tile


@dataclass
class _ServerStream:
    start: LiveStart
    last: int = -1  # the last frame number announced
    incoming: _Incoming | None = None
    dropping: int | None = None  # index of a failed frame whose remaining tiles are ignored


class ServerStreams:
    """The live streams of one server connection."""

    def __init__(self) -> None:
        self._streams: dict[str, _ServerStream] = {}
        self._stopped: dict[str, None] = {}  # recently stopped or ended: their tiles still on the way are dropped

    def __contains__(self, stream: object) -> bool:
        return stream in self._streams

    @property
    def open(self) -> frozenset[str]:
        return frozenset(self._streams)

    def start(self, msg: LiveStart, in_use: bool) -> list[object]:
        if msg.stream in self._streams or in_use:
            raise ProtocolError(errors.DUPLICATE_JOB, f"stream {msg.stream!r} is already in use", "stream")
        if len(self._streams) >= MAX_LIVE_STREAMS:
            raise ProtocolError(errors.QUEUE_FULL, f"at most {MAX_LIVE_STREAMS} live streams per connection",
                                "stream")
        self._streams[msg.stream] = _ServerStream(msg)
        self._stopped.pop(msg.stream, None)
        return [msg]

    def frame(self, msg: LiveFrameMessage) -> list[object]:
        """A frame announced; a problem with it ends that frame (a ``LiveError`` naming it), not the stream."""
        stream = self._get(msg.stream, msg.TYPE)
        if stream is None:
            return []
        try:
            return self._frame(stream, msg)
        except ProtocolError as exc:
            stream.last = max(stream.last, msg.frame)
            return self._drop(stream, msg, exc)

    def _frame(self, stream: _ServerStream, msg: LiveFrameMessage) -> list[object]:
        if msg.frame <= stream.last:
            raise ProtocolError(errors.BAD_VALUE, f"live frame {msg.frame} of stream {msg.stream!r} is not after "
                                f"frame {stream.last}", "frame")
        if stream.incoming is not None:
            missing = stream.incoming.message
            raise ProtocolError(errors.MISSING_FRAME, f"live frame {missing.frame} of stream {msg.stream!r} got "
                                f"{len(stream.incoming.tiles)} of its {missing.tiles} tiles before frame {msg.frame}",
                                "tiles")
        cells = len(grid(Rect(msg.x, msg.y, msg.width, msg.height), stream.start.tile))
        if cells > MAX_TILES:
            raise ProtocolError(errors.TOO_LARGE, f"a {msg.width}x{msg.height} live frame has {cells} tiles of "
                                f"{stream.start.tile} px (at most {MAX_TILES})", "width")
        if msg.base is None and msg.tiles != cells:
            raise ProtocolError(errors.MISSING_FRAME, f"a full live frame of {msg.width}x{msg.height} has "
                                f"{cells} tiles of {stream.start.tile} px (got {msg.tiles})", "tiles")
        if msg.tiles > cells:
            raise ProtocolError(errors.BAD_VALUE, f"a delta cannot have more tiles ({msg.tiles}) than its grid "
                                f"({cells})", "tiles")
        stream.last = msg.frame
        stream.incoming = _Incoming(msg, cells)
        return self._complete(msg.stream, stream)

    def tile(self, frame: Frame) -> list[object]:
        stream = self._get(frame.job, "live tile")
        if stream is None:
            return []
        incoming = stream.incoming
        if incoming is None and frame.index == stream.dropping:
            return []  # the rest of a frame that already failed
        if incoming is None:
            raise ProtocolError(errors.UNEXPECTED_FRAME, f"live tile for stream {frame.job!r}, which announced no "
                                "frame", "role")
        try:
            self._tile(stream, incoming, frame)
        except ProtocolError as exc:
            return self._drop(stream, incoming.message, exc)
        return self._complete(frame.job, stream)

    def _tile(self, stream: _ServerStream, incoming: _Incoming, frame: Frame) -> None:
        msg = incoming.message
        if frame.index != msg.frame & 0xFFFF:
            raise ProtocolError(errors.BAD_FRAME, f"live tile index {frame.index} is not frame {msg.frame} mod "
                                "65536", "index")
        if frame.pixel_format != msg.pixel_format:
            raise ProtocolError(errors.BAD_FRAME, f"live tiles of frame {msg.frame} must be {msg.pixel_format} "
                                f"(got {frame.pixel_format})", "pixel_format")
        region = Rect(msg.x, msg.y, msg.width, msg.height)
        cell = cell_of(region, stream.start.tile, Rect(frame.x, frame.y, frame.width, frame.height))
        if cell is None:
            raise ProtocolError(errors.SIZE_MISMATCH, f"live tile {frame.width}x{frame.height}@{frame.x},{frame.y} "
                                f"is not a {stream.start.tile} px cell of frame {msg.frame}'s grid over "
                                f"{msg.width}x{msg.height}@{msg.x},{msg.y}", "tile")
        if cell in incoming.tiles:
            raise ProtocolError(errors.BAD_FRAME, f"live tile {cell} of frame {msg.frame} arrived twice", "index")
        incoming.tiles[cell] = frame

    def _drop(self, stream: _ServerStream, msg: LiveFrameMessage, exc: ProtocolError) -> list[object]:
        stream.incoming, stream.dropping = None, msg.frame & 0xFFFF
        return [LiveError.of(msg.stream, exc, msg.frame)]

    def stop(self, msg: LiveStop) -> list[object]:
        if msg.stream not in self._streams:
            return []  # already ended (an error, or a stop that crossed it): nothing is owed
        return [msg]

    def end(self, stream: str) -> None:
        """The stream's last message is being sent: forget it, drop its tiles still on the way."""
        if self._streams.pop(stream, None) is not None:
            self._stopped[stream] = None
            while len(self._stopped) > 64:
                del self._stopped[next(iter(self._stopped))]

    def send(self, message: Message) -> str | None:
        """Encode a live message, or None when its stream already ended (nothing of it follows its end)."""
        stream = getattr(message, "stream", "")
        if stream not in self._streams:
            return None
        if isinstance(message, LiveStopped) or (isinstance(message, LiveError) and message.ended):
            self.end(stream)
        return message.encode()

    def close(self) -> frozenset[str]:
        streams = frozenset(self._streams)
        self._streams.clear()
        return streams

    def _get(self, name: str, what: str) -> _ServerStream | None:
        stream = self._streams.get(name)
        if stream is None and name not in self._stopped:
            raise ProtocolError(errors.UNKNOWN_JOB, f"{what} for unknown live stream {name!r}", "stream")
        return stream

    def _complete(self, name: str, stream: _ServerStream) -> list[object]:
        incoming = stream.incoming
        if incoming is None or len(incoming.tiles) < incoming.message.tiles:
            return []
        stream.incoming, stream.dropping = None, None
        return [LiveFrameReady(name, incoming.message, tuple(incoming.tiles.values()))]
