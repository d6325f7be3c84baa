"""A system call the emulated kernel fails to serve costs the calling thread,
never the board: the other components and the caller of ``run`` go on."""

from genode_cr.emu.services import LogSession

from .conftest import counts


def test_a_failing_system_call_faults_its_thread_and_the_board_runs_on(make_board, monkeypatch):
    board = make_board("boardA")
    board.cr.start("counter")
    board.run(0.5)
    original = LogSession.write

    def write(self, caller, ptr, length):
        if caller.label == "divider":
            raise RuntimeError("emulator bug")
        return original(self, caller, ptr, length)

    monkeypatch.setattr(LogSession, "write", write)
    LogSession._rpc_table = {**LogSession._rpc_table}    # dispatch looks the method up by name
    board.cr.start("divider")
    before = len(counts(board))
    board.run(1.0)                                          # returns: nothing raised
    assert board.cr.info("divider").state == "faulted"
    assert any("the kernel failed to serve it" in line and "emulator bug" in line
               for line in board.log("divider"))
    assert len(counts(board)) >= before + 4                 # counter went on
    assert board.cr.info("counter").state == "running"
