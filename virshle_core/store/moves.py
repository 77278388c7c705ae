"""The store's journal of VMs moving between nodes (``vm migrate``), one row per move on
each side, and what the node keeps about itself (its cordon)."""

from __future__ import annotations

from .rows import now

TYPE_CHECKING = False
if TYPE_CHECKING:
    from ..wire.api import Move


class Moves:
    """The ``moves`` and ``node_settings`` rows of a ``Store``."""

    def add_move(self, move: "Move") -> None:
        with self._lock:
            self.conn.execute(
                "INSERT OR REPLACE INTO moves VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                [move.id, move.vm_uuid, move.side, move.peer, move.peer_name, int(move.live),
                 move.phase, move.started_at or now()])

    def moves(self, side: str | None = None) -> list["Move"]:
        """The moves this node journals (one side's, or both), oldest first."""
        from ..wire.api import Move

        where, args = ("WHERE side = ?", [side]) if side else ("", [])
        with self._lock:
            rows = self.conn.execute(
                "SELECT id, vm_uuid, side, peer, peer_name, live, phase, started_at FROM moves "
                f"{where} ORDER BY started_at, rowid", args).fetchall()
        return [Move(id=r[0], vm_uuid=r[1], side=r[2], peer=r[3], peer_name=r[4], live=bool(r[5]),
                     phase=r[6], started_at=r[7]) for r in rows]

    def move(self, move_id: str) -> "Move | None":
        return next((m for m in self.moves() if m.id == move_id), None)

    def set_move_phase(self, move_id: str, phase: str) -> None:
        with self._lock:
            self.conn.execute("UPDATE moves SET phase = ? WHERE id = ?", [phase, move_id])

    def end_move(self, move_id: str) -> None:
        with self._lock:
            self.conn.execute("DELETE FROM moves WHERE id = ?", [move_id])

    def setting(self, key: str) -> str | None:
        with self._lock:
            row = self.conn.execute("SELECT value FROM node_settings WHERE key = ?", [key]).fetchone()
        return row[0] if row else None

    def set_setting(self, key: str, value: str | None) -> None:
        """Keep ``value`` under ``key``; None forgets it."""
        with self._lock:
            if value is None:
                self.conn.execute("DELETE FROM node_settings WHERE key = ?", [key])
            else:
                self.conn.execute("INSERT OR REPLACE INTO node_settings VALUES (?, ?)", [key, value])
