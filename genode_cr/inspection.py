"""What a checkpoint holds, described for people and for scripts.

Offline: nothing here talks to a board. Used by ``genode-cr inspect``.
"""

from __future__ import annotations

from collections.abc import Collection
from pathlib import Path
from typing import Any

from .checkpoint import PAGE_SIZE, PackedCheckpoint
from .v1 import checkpoint_pb2 as pb

__all__ = ["describe", "describe_text", "human_size"]


def human_size(n: int) -> str:
    value = float(n)
    for unit in ("bytes", "KiB", "MiB", "GiB"):
        if value < 1024 or unit == "GiB":
            return f"{int(value)} bytes" if unit == "bytes" else f"{value:.1f} {unit}"
        value /= 1024
    raise AssertionError


def _ref(r: pb.ObjectRef) -> dict:
    return {"badge": r.badge, "kcap": r.kcap}


def _session(s: pb.SessionInfo, **extra: Any) -> dict:
    return {"service": s.service, "id": s.id, **_ref(s.ref), "args": s.args, **extra}


def _region_map(owner: str, rm: pb.RegionMap) -> dict:
    return {"owner": owner, **_ref(rm.ref), "dataspace_badge": rm.dataspace.badge,
            "base": rm.base, "size": rm.size,
            "attachments": [{"ds_badge": a.ds_badge, "addr": a.addr, "size": a.size,
                             "offset": a.offset, "writable": a.writable,
                             "executable": a.executable} for a in rm.attachments]}


def _enum(enum: Any, value: int, prefix: str) -> str:
    return enum.Name(value).removeprefix(prefix).lower()


def _dataspace(d: pb.Dataspace, page_size: int, carried: Collection[bytes]) -> dict:
    """A dataspace's pages. A delta list (``pages_from_parent``) says only which pages
    changed since the parent; how many of the others are zero takes the chain, so
    ``nonzero_pages`` is None for it, and ``changed_pages`` None for a whole list."""
    listed = [u.digest for u in d.changed] if d.pages_from_parent else list(d.pages)
    return {**_ref(d.ref), "kind": _enum(pb.DataspaceKind, d.kind, "DATASPACE_"),
            "size": d.size, "pages": d.size // page_size,
            "pages_from_parent": d.pages_from_parent,
            "changed_pages": len(d.changed) if d.pages_from_parent else None,
            "nonzero_pages": None if d.pages_from_parent else sum(1 for p in listed if p),
            "carried_pages": sum(1 for p in listed if p and p in carried)}


def describe(checkpoint: PackedCheckpoint, path: str | None) -> dict:
    """Everything a checkpoint holds, as plain data (stable keys, for JSON).
    ``path``: the file it was read from; None for one that is in no file."""
    m = checkpoint.manifest
    carried = checkpoint.pages.keys()
    timers = [{"session_id": t.session.id, **_ref(t.session.ref), "armed": t.armed,
               "periodic": t.periodic, "period_us": t.period_us,
               "remaining_us": t.remaining_us, "elapsed_us": t.elapsed_us,
               "sigh_badge": t.sigh_badge} for t in m.timer_sessions]
    sessions = [_session(m.pd.session), _session(m.cpu.session)]
    sessions += [_session(s.session) for s in m.log_sessions]
    sessions += [_session(t.session) for t in m.timer_sessions]
    sessions += [_session(s.session, region_maps=len(s.region_maps)) for s in m.rm_sessions]
    sessions += [_session(s.session, module=s.module, dataspace_badge=s.dataspace.badge)
                 for s in m.rom_sessions]
    region_maps = [_region_map("pd.address_space", m.pd.address_space),
                   _region_map("pd.stack_area", m.pd.stack_area),
                   _region_map("pd.linker_area", m.pd.linker_area)]
    region_maps += [_region_map(f"rm session {s.session.id}", r)
                    for s in m.rm_sessions for r in s.region_maps]
    return {
        "file": path,
        "format_version": m.format_version,
        "id": m.id, "parent_id": m.parent_id, "full": checkpoint.is_full,
        "sequence": m.sequence, "component": m.component, "board": m.board, "arch": m.arch,
        "kernel": m.kernel, "taken_at_us": m.taken_at_us, "frozen": m.frozen,
        "rom": {"name": m.rom.name, "digest": m.rom.digest.hex(), "size": m.rom.size},
        "page_size": m.page_size, "tracking_unit_pages": m.tracking_unit_pages,
        "cap_map": {"addr": m.cap_map_addr, "entries": m.cap_map_entries},
        "parent_cap": {"addr": m.parent_cap_addr, **_ref(m.parent)},
        "pd": {**_ref(m.pd.session.ref), "ram_quota": m.pd.ram_quota, "ram_used": m.pd.ram_used,
               "cap_quota": m.pd.cap_quota, "cap_used": m.pd.cap_used},
        "region_maps": region_maps,
        "dataspaces": [_dataspace(d, m.page_size or PAGE_SIZE, carried) for d in m.dataspaces],
        "threads": [{"name": t.name, **_ref(t.ref), "main": t.main, "started": t.started,
                     "paused": t.paused, "ip": t.state.ip, "sp": t.state.sp, "lr": t.state.lr,
                     "cpsr": t.state.cpsr,
                     "blocking": _enum(pb.Blocking, t.blocking, "BLOCKING_")}
                    for t in m.cpu.threads],
        "signal_sources": [{**_ref(s.ref), "semaphore": _ref(s.semaphore),
                            "attached_thread_badge": s.attached_thread_badge,
                            "irq_pending": s.irq_pending} for s in m.pd.signal_sources],
        "signal_contexts": [{**_ref(c.ref), "source_badge": c.source_badge, "imprint": c.imprint,
                             "pending": c.pending} for c in m.pd.signal_contexts],
        "native_caps": [{**_ref(n.ref), "ep_thread_badge": n.ep_thread_badge}
                        for n in m.pd.native_caps],
        "sessions": sessions,
        "timers": timers,
        "sizes": {"file": Path(path).stat().st_size if path is not None else None,
                  "manifest": len(m.SerializeToString(deterministic=True)),
                  "pages_carried": len(checkpoint.pages),
                  "page_bytes": checkpoint.page_bytes,
                  "wire_bytes": checkpoint.wire_bytes},
        "root_digest": checkpoint.root_digest.hex(),
    }


def describe_text(d: dict) -> str:
    """``describe``'s data for people."""
    def ref(r: dict) -> str:
        return f"badge {r['badge']}" + (f" kcap {r['kcap']:#x}" if r["kcap"] else "")

    kind = "full" if d["full"] else f"incremental after {d['parent_id']}"
    pd = d["pd"]
    out = [
        f"checkpoint   {d['id']} ({kind}, sequence {d['sequence']})",
        f"component    {d['component']}, {'frozen' if d['frozen'] else 'live'}, taken on "
        f"{d['board']} ({d['arch']}/{d['kernel']}) at {d['taken_at_us'] / 1e6:.3f} s board time",
        f"rom          {d['rom']['name']}, {human_size(d['rom']['size'])}, "
        f"sha256 {d['rom']['digest'][:16]}",
        f"cap map      at {d['cap_map']['addr']:#010x}, {d['cap_map']['entries']} entries; "
        f"parent cap at {d['parent_cap']['addr']:#010x} ({ref(d['parent_cap'])})",
        f"pd           {ref(pd)}: RAM {human_size(pd['ram_used'])} of {human_size(pd['ram_quota'])}, "
        f"caps {pd['cap_used']} of {pd['cap_quota']}",
        "region maps",
    ]
    for rm in d["region_maps"]:
        base = f" at {rm['base']:#010x}" if rm["base"] else ""
        out.append(f"  {rm['owner']:<18} {ref(rm)}, size {rm['size']:#x}{base}, "
                   f"{len(rm['attachments'])} attachment(s)")
        for a in rm["attachments"]:
            mode = "r" + ("w" if a["writable"] else "-") + ("x" if a["executable"] else "-")
            out.append(f"    {a['addr']:#010x} +{a['size']:#x} {mode}  dataspace "
                       f"{a['ds_badge']}" + (f" offset {a['offset']:#x}" if a["offset"] else ""))
    out.append("dataspaces")
    for ds in d["dataspaces"]:
        if ds["kind"] == "rom":
            out.append(f"  {ref(ds):<22} rom  {ds['pages']:>4} pages (from the board's ROM)")
        else:
            # carried_pages is None for a stored checkpoint: its pages are in a store.
            carried = "" if ds["carried_pages"] is None else f", {ds['carried_pages']} carried here"
            listed = (f"{ds['changed_pages']} changed since parent" if ds["pages_from_parent"]
                      else f"{ds['nonzero_pages']} non-zero")
            out.append(f"  {ref(ds):<22} ram  {ds['pages']:>4} pages: {listed}{carried}")
    out.append("threads")
    for t in d["threads"]:
        flags = [f for f, on in (("main", t["main"]), ("started", t["started"]),
                                 ("paused", t["paused"])) if on]
        out.append(f"  {t['name']:<16} {ref(t)}, ip {t['ip']:#010x} sp {t['sp']:#010x}, "
                   f"blocking {t['blocking']}" + (f" [{', '.join(flags)}]" if flags else ""))
    out.append("signal sources")
    for s in d["signal_sources"]:
        attached = s["attached_thread_badge"]
        out.append(f"  {ref(s)}, semaphore {ref(s['semaphore'])}, "
                   + (f"bound to thread {attached}" if attached else "unbound")
                   + (", IRQ pending" if s["irq_pending"] else ""))
    out.append("signal contexts")
    for c in d["signal_contexts"]:
        out.append(f"  {ref(c)}, source {c['source_badge']}, imprint {c['imprint']:#x}, "
                   f"{c['pending']} pending")
    out.append("native caps")
    for n in d["native_caps"]:
        out.append(f"  {ref(n)}, entrypoint thread {n['ep_thread_badge']}")
    out.append("sessions")
    for s in d["sessions"]:
        extra = f", module {s['module']}" if "module" in s else ""
        args = f", args {s['args']}" if s["args"] else ""
        out.append(f"  {s['service']:<6} id {s['id']:<4} {ref(s)}{extra}{args}")
    out.append("timers")
    for t in d["timers"]:
        state = (f"armed, {t['remaining_us'] / 1000:.1f} ms remaining"
                 + (f", every {t['period_us'] / 1000:.1f} ms" if t["periodic"] else "")
                 if t["armed"] else "idle")
        out.append(f"  session {t['session_id']}: {state}; elapsed {t['elapsed_us'] / 1000:.1f} ms")
    s = d["sizes"]
    in_file = f"file {human_size(s['file'])}, " if s["file"] is not None else ""
    out += [
        f"sizes        {in_file}manifest {human_size(s['manifest'])}, "
        f"{s['pages_carried']} pages carried ({human_size(s['page_bytes'])} uncompressed, "
        f"{human_size(s['wire_bytes'])} compressed)",
        f"root digest  {d['root_digest']}",
    ]
    return "\n".join(out)
