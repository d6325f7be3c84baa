"""Signed checkpoints at the agents: a source agent signs what it streams, a target
agent stages only what a trusted signer signed, and refuses everything else before
any part reaches its board. Real boards, real agents, keys from pki.init_lab."""

from __future__ import annotations

import grpc
import pytest

from genode_cr.v1 import board_pb2 as bpb
from migrate import convert, errors
from migrate.security import Identity, Role
from migrate.security.pki import init_lab
from migrate.security.signing import (CheckpointStatement, Signature, Signer, TrustedSigners)
from migrate.v1 import agent_pb2 as apb
from migrate.v1 import resources_pb2 as rpb

from .conftest import DEADLINE, counts, record_staged_pages, wait_for
from .test_agent import counted, log_texts, refused, take_checkpoint

AGENT_A = Identity(Role.AGENT, "boardA")


@pytest.fixture(scope="module")
def keys(tmp_path_factory):
    """The lab's keys, and a rogue lab's (same names, other keys; and a stranger)."""
    lab = init_lab(tmp_path_factory.mktemp("lab"), boards=("boardA", "boardB"))
    rogue = init_lab(tmp_path_factory.mktemp("rogue"), boards=("boardA", "boardZ"))
    return lab, rogue


@pytest.fixture
def signed_pair(boards, agents, keys):
    """boardA's agent signs as agent/boardA; boardB's trusts the lab's keys only."""
    lab, _ = keys
    a, b = boards("boardA"), boards("boardB")
    source = agents(a, signer=Signer.from_file(lab.signing_key(AGENT_A)))
    target = agents(b, trusted=TrustedSigners.load([lab.directory]), allow_unsigned=False)
    return a, b, source, target


def split(parts):
    """(board parts, signature) of an agent's checkpoint stream."""
    assert isinstance(parts[0], bpb.CheckpointStart) and parts[0].root_digest
    assert isinstance(parts[1], rpb.CheckpointSignature), "the signature follows the start"
    assert not any(isinstance(p, rpb.CheckpointSignature) for p in parts[2:])
    assert parts[-1].root_digest == parts[0].root_digest
    return [parts[0], *parts[2:]], parts[1]


def requests(session, parts, signature=None, root=None):
    """A stage stream: the signature and the announced root go with the start."""
    messages = [convert.stage_request(session, p) for p in parts]
    if signature is not None:
        messages[0].signature.CopyFrom(signature)
    messages[0].root_digest = parts[-1].root_digest if root is None else root
    return messages


def begin(agent) -> int:
    return agent.stub.BeginRestore(apb.AgentServiceBeginRestoreRequest(),
                                   timeout=DEADLINE).session


def commit(agent, session: int):
    return agent.stub.CommitRestore(apb.AgentServiceCommitRestoreRequest(
        session=session, generation=2), timeout=DEADLINE)


def board_state(board):
    """What a refused stage must leave as it was: components, free RAM, staged restores."""
    return sorted(board.board.cr.children), board.board.free_ram, len(board.board.cr.staged)


def forged(signer: Signer, parts) -> rpb.CheckpointSignature:
    start, end = parts[0], parts[-1]
    return convert.signature_to_pb(signer.sign(CheckpointStatement.of(start.manifest,
                                                                       end.root_digest)))


def test_signed_checkpoint_is_staged_and_a_replayed_commit_refused(signed_pair):
    a, b, source, target = signed_pair
    source.stub.StartComponent(apb.AgentServiceStartComponentRequest(name="counter",
                                                                     generation=1),
                               timeout=DEADLINE)
    counted(source, "counter", 2)
    parts, signature = split(take_checkpoint(source, "counter", freeze=True))
    assert Signature.parse(signature.signer, signature.algorithm, signature.signature
                           ).signer == AGENT_A
    session = begin(target)
    done = target.stub.StageCheckpoint(iter(requests(session, parts, signature)),
                                       timeout=DEADLINE)
    assert done.rounds == 1
    reply = commit(target, session)
    assert reply.component.name == "counter"
    wait_for(lambda: len(counts(log_texts(target, "counter"))) >= 2,
             "counter counting on boardB")
    running = board_state(b)

    # The same commit again: refused, nothing changes on the board.
    code, error = refused(target.stub.CommitRestore, apb.AgentServiceCommitRestoreRequest(
        session=session, generation=2))
    assert code == grpc.StatusCode.FAILED_PRECONDITION
    assert errors.reason_of(error) == "RESTORE_SESSION_ENDED" and "committed" in str(error)
    assert board_state(b) == running

    # A commit of an aborted session: refused as well.
    aborted = begin(target)
    target.stub.AbortRestore(apb.AgentServiceAbortRestoreRequest(session=aborted),
                             timeout=DEADLINE)
    code, error = refused(target.stub.CommitRestore, apb.AgentServiceCommitRestoreRequest(
        session=aborted, generation=3))
    assert code == grpc.StatusCode.FAILED_PRECONDITION and "aborted" in str(error)
    assert board_state(b) == running


def test_untrusted_stages_never_reach_the_board(signed_pair, keys):
    lab, rogue = keys
    a, b, source, target = signed_pair
    staged = record_staged_pages(b)
    source.stub.StartComponent(apb.AgentServiceStartComponentRequest(name="counter"),
                               timeout=DEADLINE)
    counted(source, "counter", 1)
    x, x_signature = split(take_checkpoint(source, "counter"))
    y, y_signature = split(take_checkpoint(source, "counter"))
    assert x[0].manifest.id != y[0].manifest.id
    stranger = Signer.from_file(rogue.signing_key(Identity(Role.AGENT, "boardZ")))
    impostor = Signer.from_file(rogue.signing_key(AGENT_A))     # claims agent/boardA
    cases = {
        "unsigned": (requests(0, y), "CHECKPOINT_UNSIGNED"),
        "unknown signer": (requests(0, y, forged(stranger, y)), "CHECKPOINT_SIGNER_UNKNOWN"),
        "known name, other key": (requests(0, y, forged(impostor, y)),
                                  "CHECKPOINT_SIGNATURE_INVALID"),
        "X's signature on Y": (requests(0, y, x_signature), "CHECKPOINT_SIGNATURE_INVALID"),
        "X's signature and root on Y": (requests(0, y, x_signature, x[-1].root_digest),
                                        "CHECKPOINT_SIGNATURE_INVALID"),
        "no root announced": (requests(0, y, y_signature, b""),
                              "CHECKPOINT_SIGNATURE_INVALID"),
    }
    before = board_state(b)
    for name, (messages, reason) in cases.items():
        session = begin(target)
        for message in messages:
            message.session = session
        code, error = refused(target.stub.StageCheckpoint, iter(messages))
        assert code == grpc.StatusCode.FAILED_PRECONDITION, name
        assert errors.reason_of(error) == reason, (name, error)
        assert isinstance(error, errors.UntrustedCheckpoint), name
        # Refused with the start: nothing staged, the session aborted, the board as it was.
        assert staged == [], name
        wait_for(lambda: session not in b.server.service._sessions, f"{name}: aborted")
        assert board_state(b) == before, name

    # Signed right at the start, but the end brings another root: refused before the end.
    session = begin(target)
    messages = requests(session, y, y_signature)
    messages[-1].end.root_digest = x[-1].root_digest
    code, error = refused(target.stub.StageCheckpoint, iter(messages))
    assert errors.reason_of(error) == "CHECKPOINT_SIGNATURE_INVALID"
    wait_for(lambda: session not in b.server.service._sessions, "aborted")
    assert board_state(b) == before and b.board.cr.staged == []

    # An agent that trusts nobody refuses signed checkpoints too.
    session = begin(target)
    target.agent.service.trusted = TrustedSigners()
    code, error = refused(target.stub.StageCheckpoint,
                          iter(requests(session, y, y_signature)))
    assert errors.reason_of(error) == "CHECKPOINT_SIGNER_UNKNOWN"
    assert board_state(b) == before


def test_an_agent_without_a_key_streams_unsigned(boards, agents):
    a = boards("boardA")
    source = agents(a)
    source.stub.StartComponent(apb.AgentServiceStartComponentRequest(name="counter"),
                               timeout=DEADLINE)
    counted(source, "counter", 1)
    parts = take_checkpoint(source, "counter")
    assert isinstance(parts[-1], bpb.CheckpointEnd)
