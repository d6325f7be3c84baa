"""A chain of full + incrementals restores exactly the state of one full
checkpoint taken at the same point: all memory, registers and slots."""

import pytest

from .conftest import errors_in, page_lists


def restored_state(board, name):
    child = board.cr.children[name]
    pd = child.pd
    memory = {m.va: pd.read(m.va, m.size) for m in pd._mappings}
    registers = {t.name: list(t.regs) for t in child.threads}
    slots = {kcap: (obj.kind, obj.badge) for kcap, obj in pd.cap_space.items()}
    return memory, registers, slots


@pytest.mark.parametrize("unit_pages", [1, 4])
def test_chain_equals_full(make_board, unit_pages):
    a = make_board("boardA", tracking_unit_pages=unit_pages)
    a.cr.start("kvstore")
    a.run(0.8)
    chain = [a.cr.checkpoint("kvstore")]
    for seconds in (0.3, 0.45, 0.2):
        a.run(seconds)
        chain.append(a.cr.checkpoint("kvstore", since=chain[-1], freeze=seconds == 0.2))
    full = a.cr.checkpoint("kvstore")          # frozen: nothing ran in between

    assert page_lists(*chain) == page_lists(full)

    from_chain, from_full = make_board("boardB"), make_board("boardB")
    from_chain.cr.restore(chain)
    from_full.cr.restore(full)
    chain_state, full_state = restored_state(from_chain, "kvstore"), restored_state(from_full, "kvstore")
    assert chain_state[0].keys() == full_state[0].keys()
    for va in chain_state[0]:
        assert chain_state[0][va] == full_state[0][va], f"memory differs at {va:#x}"
    assert chain_state[1:] == full_state[1:]
    from_chain.run(0.5)
    assert not errors_in(from_chain, "kvstore")
