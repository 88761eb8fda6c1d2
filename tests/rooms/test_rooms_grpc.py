#!/usr/bin/python3
"""Rooms on gRPC, against a real parleyd with grpcio: each access rule
(tokens' `rooms` claims, legacy role tokens, memberships, visibility,
modes, mutes, removals, organizers only) refused with PERMISSION_DENIED
and its rule in the `parley-rule` trailer (unary) or Error.rule (Connect),
and each room action stored, listed, and sent live to watchers as a
RoomEvent; room settings, deletion, erasure and ListRooms filtering.

usage: test_rooms_grpc.py [case ...]   (PARLEYD in the environment)"""
import sys
import os
import time

import grpc

import roomsharness as H
from roomsharness import check, kind, token

OK = grpc.StatusCode.OK


def org_token(s, sub="olga"):
    """The platform's backend: organizer everywhere (legacy claim)."""
    return token(s, sub, role="organizer")


def make_room(c, tok, name, **settings):
    r = c.ok("History", "CreateRoom", tok, name=name, **settings)
    return r.room


def case_grants(s):
    """One user, organizer of event A and participant of event B."""
    c = H.Client(s)
    p = c.p
    olga = org_token(s)
    make_room(c, olga, "evB.main")
    both = token(s, "ada", rooms={"evA.*": "organizer", "evB.*": "participant"})
    # Creating rooms: only where the token makes her organizer.
    r = c.ok("History", "CreateRoom", both, name="evA.main", title="Event A")
    check(r.created and r.room.title == "Event A" and r.room.me.role == p.M.ROLE_ORGANIZER,
          "organizer of evA.* creates evA.main and is its organizer")
    c.denied("ORGANIZER_ONLY", "History", "CreateRoom", both, name="evB.side")
    c.denied("ORGANIZER_ONLY", "History", "CreateRoom", both, name="evC.main")
    # Her role is per room, and messages carry it.
    a = c.ok("Stream", "Publish", both, room="evA.main", client_msg_id="1", body="hi A")
    b = c.ok("Stream", "Publish", both, room="evB.main", client_msg_id="1", body="hi B")
    check(a.message.author.role == p.M.ROLE_ORGANIZER and b.message.author.role == p.M.ROLE_PARTICIPANT,
          "the author's role is their role in the room (%d, %d)" % (a.message.author.role, b.message.author.role))
    g = c.ok("History", "GetRoom", both, name="evB.main")
    check(g.room.me.role == p.M.ROLE_PARTICIPANT and g.room.me.can_post, "me in evB: participant, may post")
    c.ok("Rooms", "Moderate", both, room="evA.main", user_id="bob", action=p.R.MODERATE_ACTION_MUTE)
    c.denied("ORGANIZER_ONLY", "Rooms", "Moderate", both, room="evB.main", user_id="bob",
             action=p.R.MODERATE_ACTION_MUTE)
    # A token that grants nothing in a room: refused on every call, and a
    # room that does not exist looks the same (nothing leaks).
    only_b = token(s, "bob", rooms={"evB.*": "participant"})
    for name in ("evA.main", "evA.nothing-here"):
        c.denied("NOT_GRANTED", "History", "GetRoom", only_b, name=name)
    c.denied("NOT_GRANTED", "History", "ListMessages", only_b, room="evA.main")
    c.denied("NOT_GRANTED", "History", "GetMessage", only_b, room="evA.main", seq=1)
    c.denied("NOT_GRANTED", "Stream", "Publish", only_b, room="evA.main", client_msg_id="x", body="x")
    c.denied("NOT_GRANTED", "Rooms", "ListActions", only_b, room="evA.main")
    r = c.call("History", "GetRoom", only_b, name="evB.nothing-here")
    check(r.code == grpc.StatusCode.NOT_FOUND and r.perr == "ROOM_NOT_FOUND",
          "a missing room the token grants is ROOM_NOT_FOUND: %r" % r)
    # On a Connect stream: an Error frame naming the rule.
    cn = c.connect(only_b)
    f, _ = cn.subscribed("evA.main")
    check(kind(f) == "error" and f.error.code == p.M.ERROR_CODE_PERMISSION_DENIED
          and f.error.rule == p.M.RULE_NOT_GRANTED and "NOT_GRANTED" in f.error.detail,
          "subscribe without a grant: Error{PERMISSION_DENIED, NOT_GRANTED}: %s" % f)
    rid = cn.publish("evA.main", "c1", "sneaky")
    f, _ = cn.until(lambda f: f.request_id == rid, what="answer to the publish")
    check(kind(f) == "error" and f.error.rule == p.M.RULE_NOT_GRANTED, "publish without a grant refused on Connect")
    f, _ = cn.subscribed("evB.main")
    check(kind(f) == "subscribed" and f.subscribed.room.me.role == p.M.ROLE_PARTICIPANT,
          "subscribe where granted: Subscribed with me.role participant")
    cn.close()
    # Malformed rooms claims refuse the token as a whole.
    bad = token(s, "eve", rooms={"evA.*": "admin"})
    r = c.call("History", "GetRoom", bad, name="evA.main")
    check(r.code == grpc.StatusCode.UNAUTHENTICATED, "a rooms claim with an unknown role: UNAUTHENTICATED")
    c.close()


def case_legacy_tokens(s):
    """Tokens without a rooms claim behave as before rooms had rules."""
    c = H.Client(s)
    p = c.p
    olga = org_token(s)
    pat = token(s, "pat", role="participant")
    r = c.ok("History", "ListMessages", pat, room="lobby")
    check(r.room.me.role == p.M.ROLE_PARTICIPANT and r.room.me.can_post, "legacy participant reads lobby")
    c.ok("Stream", "Publish", pat, room="lobby", client_msg_id="1", body="hello")
    c.denied("ORGANIZER_ONLY", "History", "CreateRoom", pat, name="new-room")
    make_room(c, olga, "backstage", visibility=p.M.VISIBILITY_MEMBERS)
    c.denied("MEMBERS_ONLY", "History", "GetRoom", pat, name="backstage")
    c.ok("History", "GetRoom", olga, name="backstage")
    names = [x.name for x in c.ok("History", "ListRooms", pat).rooms]
    check(names == ["lobby", "other"], "legacy participant lists the open rooms only: %s" % names)
    names = [x.name for x in c.ok("History", "ListRooms", olga).rooms]
    check(names == ["backstage", "lobby", "other"], "organizer lists all three: %s" % names)
    c.close()


def case_members(s):
    c = H.Client(s)
    p = c.p
    olga = org_token(s)
    ev = {"ev1.*": "participant"}
    ada, bob = token(s, "ada", rooms=ev), token(s, "bob", rooms=ev)
    make_room(c, olga, "ev1.back", visibility=p.M.VISIBILITY_MEMBERS, title="Backstage")
    c.denied("MEMBERS_ONLY", "History", "ListMessages", ada, room="ev1.back")
    # She cannot even see the room, so that is what a moderation call hears.
    c.denied("MEMBERS_ONLY", "Rooms", "AddMember", ada, room="ev1.back", user_id="ada")
    r = c.ok("Rooms", "AddMember", olga, room="ev1.back", user_id="ada")
    check(r.member.user_id == "ada" and r.member.role == p.M.ROLE_PARTICIPANT and r.member.added_by == "olga"
          and r.action.kind == p.M.ACTION_KIND_ADD_MEMBER, "AddMember stores the member and the action")
    r = c.ok("Rooms", "AddMember", olga, room="ev1.back", user_id="ada")
    check(not r.HasField("action"), "adding a member again with the same role stores no action")
    g = c.ok("History", "GetRoom", ada, name="ev1.back")
    check(g.room.me.member and g.room.me.can_post, "a member reads and may post")
    c.denied("MEMBERS_ONLY", "History", "GetRoom", bob, name="ev1.back")
    # A membership alone grants: carl's token knows nothing of ev1.
    carl = token(s, "carl", rooms={"other-event.*": "participant"})
    c.denied("NOT_GRANTED", "History", "GetRoom", carl, name="ev1.back")
    c.ok("Rooms", "AddMember", olga, room="ev1.back", user_id="carl", role=p.M.ROLE_ORGANIZER)
    g = c.ok("History", "GetRoom", carl, name="ev1.back")
    check(g.room.me.role == p.M.ROLE_ORGANIZER, "a membership as organizer makes carl organizer there")
    names = [m.user_id for m in c.ok("Rooms", "ListMembers", olga, room="ev1.back").members]
    check(names == ["ada", "carl"], "ListMembers by id: %s" % names)
    c.denied("ORGANIZER_ONLY", "Rooms", "ListMembers", ada, room="ev1.back")
    # Removing the membership ends ada's live subscription.
    cn = c.connect(ada)
    f, _ = cn.subscribed("ev1.back")
    check(kind(f) == "subscribed", "member subscribes to the members-only room")
    rid = f.request_id
    r = c.ok("Rooms", "RemoveMember", olga, room="ev1.back", user_id="ada")
    check(r.removed and r.action.kind == p.M.ACTION_KIND_REMOVE_MEMBER, "RemoveMember stored")
    f, _ = cn.until(lambda f: kind(f) == "error", what="the cut of the subscription")
    check(f.request_id == rid and f.error.rule == p.M.RULE_MEMBERS_ONLY and not f.error.fatal,
          "the subscription ends with Error{MEMBERS_ONLY} on its subscribe's request id")
    f = cn.recv()
    check(kind(f) == "unsubscribed" and f.unsubscribed.room == "ev1.back", "then Unsubscribed")
    c.denied("MEMBERS_ONLY", "History", "GetRoom", ada, name="ev1.back")
    r = c.ok("Rooms", "RemoveMember", olga, room="ev1.back", user_id="ada")
    check(not r.removed, "removing again: removed = false")
    cn.close()
    c.close()


def case_modes(s):
    c = H.Client(s)
    p = c.p
    olga = org_token(s)
    pat = token(s, "pat", rooms={"ev.*": "participant"})
    make_room(c, olga, "ev.news", mode=p.M.ROOM_MODE_ANNOUNCEMENTS, title="News")
    c.denied("ANNOUNCEMENTS", "Stream", "Publish", pat, room="ev.news", client_msg_id="1", body="me too")
    c.ok("Stream", "Publish", olga, room="ev.news", client_msg_id="1", body="Doors open at 9")
    g = c.ok("History", "GetRoom", pat, name="ev.news")
    check(not g.room.me.can_post and g.room.me.post_rule == p.M.RULE_ANNOUNCEMENTS,
          "me: can_post false, post_rule ANNOUNCEMENTS")
    cn = c.connect(pat)
    f, replay = cn.subscribed("ev.news")
    check(kind(f) == "subscribed" and len(replay) == 1 and f.subscribed.room.mode == p.M.ROOM_MODE_ANNOUNCEMENTS,
          "participants read announcements")
    rid = cn.publish("ev.news", "2", "can I?")
    f, _ = cn.until(lambda f: f.request_id == rid, what="publish answer")
    check(kind(f) == "error" and f.error.code == p.M.ERROR_CODE_PERMISSION_DENIED
          and f.error.rule == p.M.RULE_ANNOUNCEMENTS and "rule ANNOUNCEMENTS" in f.error.detail,
          "Connect publish in announcements: Error{ANNOUNCEMENTS}")
    # Open it, the participant posts and edits; close it (archive).
    r = c.ok("Rooms", "UpdateRoom", olga, name="ev.news", mode=p.M.ROOM_MODE_OPEN)
    check([a.kind for a in r.actions] == [p.M.ACTION_KIND_SET_MODE] and r.room.mode == p.M.ROOM_MODE_OPEN,
          "UpdateRoom mode: one SET_MODE action")
    f, _ = cn.until(lambda f: kind(f) == "room_event", what="the mode's room event")
    check(f.room_event.action.kind == p.M.ACTION_KIND_SET_MODE and f.room_event.action.mode == p.M.ROOM_MODE_OPEN
          and f.room_event.room.mode == p.M.ROOM_MODE_OPEN and f.room_event.action.actor.id == "olga",
          "watchers see SET_MODE live with the actor and the room after")
    m = c.ok("Stream", "Publish", pat, room="ev.news", client_msg_id="3", body="thanks!").message
    c.ok("History", "EditMessage", pat, room="ev.news", seq=m.seq, body="thanks a lot!")
    c.ok("Rooms", "UpdateRoom", olga, name="ev.news", mode=p.M.ROOM_MODE_CLOSED)
    c.denied("ROOM_CLOSED", "Stream", "Publish", pat, room="ev.news", client_msg_id="4", body="late")
    c.denied("ROOM_CLOSED", "Stream", "Publish", olga, room="ev.news", client_msg_id="5", body="late too")
    c.denied("ROOM_CLOSED", "History", "EditMessage", pat, room="ev.news", seq=m.seq, body="again")
    d = c.ok("History", "DeleteMessage", pat, room="ev.news", seq=m.seq)
    check(d.message.deleted, "deleting one's own message in a closed room still works")
    r = c.ok("History", "ListMessages", pat, room="ev.news")
    check(len(r.messages) == 2 and r.room.mode == p.M.ROOM_MODE_CLOSED, "a closed room is read as before")
    cn.close()
    c.close()


def case_mute(s):
    c = H.Client(s)
    p = c.p
    olga = org_token(s)
    ev = {"ev.*": "participant"}
    ada, bob = token(s, "ada", rooms=ev), token(s, "bob", rooms=ev)
    make_room(c, olga, "ev.main")
    m = c.ok("Stream", "Publish", ada, room="ev.main", client_msg_id="1", body="hi").message
    watch = c.connect(bob)
    f, _ = watch.subscribed("ev.main")
    ada_cn = c.connect(ada)
    f, _ = ada_cn.subscribed("ev.main")
    c.denied("ORGANIZER_ONLY", "Rooms", "Moderate", bob, room="ev.main", user_id="ada",
             action=p.R.MODERATE_ACTION_MUTE)
    r = c.ok("Rooms", "Moderate", olga, room="ev.main", user_id="ada", action=p.R.MODERATE_ACTION_MUTE,
             duration_ms=3_600_000, reason="cool down")
    a = r.action
    check(a.kind == p.M.ACTION_KIND_MUTE and a.target_user_id == "ada" and a.actor.id == "olga"
          and a.reason == "cool down" and a.until_ms > int(time.time() * 1000) + 3_500_000 and a.id >= 1,
          "Moderate MUTE stores who, whom, until and why: %s" % a)
    f, _ = watch.until(lambda f: kind(f) == "room_event", what="the mute event")
    check(f.room_event.action.kind == p.M.ACTION_KIND_MUTE and f.room_event.action.target_user_id == "ada"
          and f.room_event.action.id == a.id, "a watcher sees the MUTE live")
    f, _ = ada_cn.until(lambda f: kind(f) == "room_event", what="the mute event (ada)")
    check(f.room_event.action.target_user_id == "ada", "the muted user sees it too")
    # A repeat of a publish stored before the mute (its ack lost) is acked
    # with the original, never reported refused.
    r = c.ok("Stream", "Publish", ada, room="ev.main", client_msg_id="1", body="hi (retry)")
    check(r.duplicate and r.message.seq == m.seq and r.message.body == "hi",
          "a muted user's retry of a stored message: duplicate, the original")
    r = c.denied("MUTED", "Stream", "Publish", ada, room="ev.main", client_msg_id="2", body="still here")
    check("until 20" in r.details, "the detail says until when: %s" % r.details)
    rid = ada_cn.publish("ev.main", "3", "hello?")
    f, _ = ada_cn.until(lambda f: f.request_id == rid, what="answer to a muted publish")
    check(kind(f) == "error" and f.error.rule == p.M.RULE_MUTED and "rule MUTED" in f.error.detail,
          "Connect publish while muted: Error{MUTED}")
    c.denied("MUTED", "History", "EditMessage", ada, room="ev.main", seq=m.seq, body="edited")
    g = c.ok("History", "GetRoom", ada, name="ev.main")
    check(g.room.me.muted and g.room.me.muted_until_ms == a.until_ms and not g.room.me.can_post
          and g.room.me.post_rule == p.M.RULE_MUTED, "me says muted, until, may not post")
    c.ok("History", "ListMessages", ada, room="ev.main")  # reading goes on
    c.ok("History", "DeleteMessage", ada, room="ev.main", seq=m.seq)  # and deleting her own
    c.ok("Stream", "Publish", bob, room="ev.main", client_msg_id="1", body="others post")
    r = c.ok("Rooms", "Moderate", olga, room="ev.main", user_id="ada", action=p.R.MODERATE_ACTION_UNMUTE)
    check(r.action.kind == p.M.ACTION_KIND_UNMUTE, "UNMUTE stored")
    r = c.ok("Rooms", "Moderate", olga, room="ev.main", user_id="ada", action=p.R.MODERATE_ACTION_UNMUTE)
    check(not r.HasField("action"), "UNMUTE of a user not muted stores nothing")
    c.ok("Stream", "Publish", ada, room="ev.main", client_msg_id="4", body="back")
    # A short mute ends by itself.
    c.ok("Rooms", "Moderate", olga, room="ev.main", user_id="bob", action=p.R.MODERATE_ACTION_MUTE,
         duration_ms=1000)
    c.denied("MUTED", "Stream", "Publish", bob, room="ev.main", client_msg_id="2", body="x")
    time.sleep(1.3)
    r = c.publish(bob, "ev.main", "3", "after the mute ran out")
    check(r.code == OK, "a mute of 1 s is over after 1.3 s: %r" % r)
    # Organizers are not held by a mute.
    c.ok("Rooms", "Moderate", olga, room="ev.main", user_id="olga", action=p.R.MODERATE_ACTION_MUTE)
    c.ok("Stream", "Publish", olga, room="ev.main", client_msg_id="1", body="organizers outrank mutes")
    acts = c.ok("Rooms", "ListActions", bob, room="ev.main").actions
    kinds = [x.kind for x in acts]
    check(kinds == [p.M.ACTION_KIND_MUTE, p.M.ACTION_KIND_UNMUTE, p.M.ACTION_KIND_MUTE, p.M.ACTION_KIND_MUTE]
          and [x.id for x in acts] == [1, 2, 3, 4], "ListActions: the stored log, ids dense: %s" % kinds)
    page = c.ok("Rooms", "ListActions", bob, room="ev.main", after_id=2, limit=1)
    check([x.id for x in page.actions] == [3] and page.has_more, "ListActions pages by id")
    c.call("Rooms", "Moderate", olga, room="ev.main", user_id="ada", action=0)
    r = c.call("Rooms", "Moderate", olga, room="ev.main", user_id="ada", action=p.R.MODERATE_ACTION_MUTE,
               duration_ms=-1)
    check(r.code == grpc.StatusCode.INVALID_ARGUMENT and r.perr == "MALFORMED", "a negative duration: MALFORMED")
    r = c.call("Rooms", "Moderate", olga, room="ev.main", user_id="", action=p.R.MODERATE_ACTION_MUTE)
    check(r.perr == "AUTHOR_INVALID", "an empty user id: AUTHOR_INVALID (%r)" % r)
    watch.close()
    ada_cn.close()
    c.close()


def case_mute_under_load(s):
    """A mute while the user's publishes stream in, many per group commit
    (the writer thread commits them while the loop serves): every publish
    sent after Moderate answered is refused MUTED (the rules are read
    inside each group's transaction, never from an older view), each one
    sent before is acked or refused, and exactly the acked ones are
    stored. The client keeps 32 publishes in flight, as a real one would."""
    import threading
    c = H.Client(s)
    p = c.p
    olga = org_token(s)
    ada = token(s, "ada", rooms={"ld.*": "participant"})
    make_room(c, olga, "ld.main")
    cn = c.connect(ada)
    state = {"cut": None}

    def moderator():
        time.sleep(0.4)
        c.ok("Rooms", "Moderate", olga, room="ld.main", user_id="ada", action=p.R.MODERATE_ACTION_MUTE)
        state["cut"] = cn.rid + 1  # rids from here were sent after the mute answered
    t = threading.Thread(target=moderator, daemon=True)
    t.start()
    cids, acked, refused, other = {}, {}, [], []
    pending, i, after_cut = set(), 0, 0
    deadline = time.time() + 60
    while time.time() < deadline and (pending or after_cut < 200):
        while len(pending) < 32 and after_cut < 200:
            i += 1
            rid = cn.publish("ld.main", "p%d" % i, "message %d" % i)
            cids[rid] = "p%d" % i
            pending.add(rid)
            if state["cut"] is not None and rid >= state["cut"]:
                after_cut += 1
        f = cn.recv(max(0.05, deadline - time.time()))
        if f is None:
            break
        for g in (list(f.batch.frames) if kind(f) == "batch" else [f]):
            if g.request_id not in pending:
                continue
            pending.discard(g.request_id)
            if kind(g) == "ack":
                acked[g.request_id] = g.ack.message.seq
            elif kind(g) == "error" and g.error.rule == p.M.RULE_MUTED:
                refused.append(g.request_id)
            else:
                other.append((g.request_id, str(g)[:200]))
    t.join()
    cut = state["cut"]
    check(not pending and not other and cut is not None,
          "every publish answered, acked or MUTED (%d acked, %d refused, %d unanswered, other %s; "
          "stream %s)" % (len(acked), len(refused), len(pending), other[:2], cn.ended))
    check(any(r < cut for r in acked), "publishes were acked before the mute (%d)" % len(acked))
    late = sorted(r for r in acked if r >= cut)
    check(not late and sum(r >= cut for r in refused) >= 200,
          "no publish sent after the mute answered was acked (late acks: %s)" % late[:5])
    stored, before = set(), 0
    while True:
        page = c.ok("History", "ListMessages", olga, room="ld.main", limit=1000,
                    **({"before_seq": before} if before else {}))
        stored |= {m.client_msg_id for m in page.messages}
        if not page.has_more or not page.messages:
            break
        before = page.messages[0].seq
    check(stored == {cids[r] for r in acked},
          "exactly the acked publishes are stored (%d stored, %d acked)" % (len(stored), len(acked)))
    cn.close()
    c.close()


def case_mixed_group(s):
    """A muted user and a free one publish into one room at once, 32 in
    flight each, so the writer's groups hold both: the commit reads each
    user's standing once per group and room, and must never answer one
    user with the other's. Every publish of the free user is acked and
    stored, every one of the muted user refused MUTED, none stored."""
    c = H.Client(s)
    p = c.p
    olga = org_token(s)
    make_room(c, olga, "mx.main")
    c.ok("Rooms", "Moderate", olga, room="mx.main", user_id="bob", action=p.R.MODERATE_ACTION_MUTE)
    users = {u: c.connect(token(s, u, rooms={"mx.*": "participant"})) for u in ("ada", "bob")}
    sent = {u: 0 for u in users}
    pending = {u: set() for u in users}
    acked = {u: 0 for u in users}
    refused = {u: 0 for u in users}
    other = []
    deadline = time.time() + 60
    while time.time() < deadline and any(pending[u] or sent[u] < 300 for u in users):
        for u, cn in users.items():
            while len(pending[u]) < 32 and sent[u] < 300:
                sent[u] += 1
                pending[u].add(cn.publish("mx.main", "%s%d" % (u, sent[u]), "from %s" % u))
        for u, cn in users.items():
            if not pending[u]:
                continue
            f = cn.recv(0.05)
            for g in ([] if f is None else list(f.batch.frames) if kind(f) == "batch" else [f]):
                if g.request_id not in pending[u]:
                    continue
                pending[u].discard(g.request_id)
                if kind(g) == "ack":
                    acked[u] += 1
                elif kind(g) == "error" and g.error.rule == p.M.RULE_MUTED:
                    refused[u] += 1
                else:
                    other.append((u, str(g)[:200]))
    check(not other and not pending["ada"] and not pending["bob"],
          "every publish answered (other %s, unanswered %d + %d)"
          % (other[:2], len(pending["ada"]), len(pending["bob"])))
    check(acked["ada"] == 300 and refused["ada"] == 0,
          "the free user's 300 publishes all acked (%d acked, %d refused)" % (acked["ada"], refused["ada"]))
    check(refused["bob"] == 300 and acked["bob"] == 0,
          "the muted user's 300 publishes all refused (%d refused, %d acked)" % (refused["bob"], acked["bob"]))
    page = c.ok("History", "ListMessages", olga, room="mx.main", limit=1000)
    authors = {m.author.id for m in page.messages}
    check(len(page.messages) == 300 and authors == {"ada"},
          "exactly the free user's 300 are stored (%d stored, authors %s)" % (len(page.messages), sorted(authors)))
    for cn in users.values():
        cn.close()
    c.close()


def case_replay_fault(s):
    """A room whose history cannot be read (a damaged page of its messages)
    fails only its own subscription, with an Error frame under its request
    id: the stream goes on and serves the other rooms it carries, as a
    gateway's shared link carries hundreds. SQLite only (the page is
    damaged in the file)."""
    import signal
    import sqlite3
    if os.environ.get("PARLEY_ROOMS_STORE") == "postgres":
        print("sqlite only: skipped on postgres", flush=True)
        return
    c = H.Client(s)
    p = c.p
    olga = org_token(s)
    make_room(c, olga, "rf.bad")
    make_room(c, olga, "rf.good")
    cn = c.connect(olga)
    pending = {cn.publish("rf.bad", "b%d" % i, ("%04d" % i) * 750) for i in range(300)}
    pending |= {cn.publish("rf.good", "g%d" % i, "good %d" % i) for i in range(2)}
    errors = []
    while pending:
        f = cn.recv(20)
        if f is None:
            break
        for g in (list(f.batch.frames) if kind(f) == "batch" else [f]):
            if kind(g) == "error":
                errors.append(str(g)[:200])
            pending.discard(g.request_id)
    check(not pending and not errors,
          "the history is written (%d unanswered, errors %s)" % (len(pending), errors[:2]))
    cn.close()
    c.close()
    s.pd.send_signal(signal.SIGTERM)
    s.pd.wait(timeout=20)
    db_path = os.path.join(s.dir, "parley.db")
    db = sqlite3.connect(db_path)
    db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    size = db.execute("PRAGMA page_size").fetchone()[0]
    # The messages table's leaves in key order (room id, seq): rf.bad's
    # 300 rows fill the first of the rooms made here.
    leaves = [r[0] for r in db.execute(
        "SELECT pageno FROM dbstat WHERE name = 'messages' AND pagetype = 'leaf' ORDER BY path")]
    db.close()
    check(len(leaves) > 20, "rf.bad's history spans many pages (%d leaves)" % len(leaves))
    with open(db_path, "r+b") as fh:
        fh.seek((leaves[len(leaves) // 4] - 1) * size)
        fh.write(b"\xff" * size)
    s._start_parleyd()
    c = H.Client(s)
    cn = c.connect(olga)
    f, before = cn.subscribed("rf.bad")
    check(kind(f) == "error" and f.error.code == p.M.ERROR_CODE_INTERNAL,
          "the damaged room's subscribe ends in an Error frame, after %d events (%s)"
          % (len(before), kind(f)))
    f, before = cn.subscribed("rf.good")
    check(kind(f) == "subscribed" and [x.event.message.client_msg_id for x in before] == ["g0", "g1"],
          "the same stream then follows the other room, its history replayed (%s)"
          % [kind(x) for x in before])
    c.ok("Stream", "Publish", olga, room="rf.good", client_msg_id="g2", body="still here")
    f, _ = cn.until(lambda f: kind(f) == "event", what="a live event on the same stream")
    check(f.event.message.client_msg_id == "g2" and cn.ended is None,
          "live events still reach the stream (ended: %s)" % cn.ended)
    cn.close()
    c.close()


def case_remove(s):
    c = H.Client(s)
    p = c.p
    olga = org_token(s)
    ada = token(s, "ada", rooms={"ev.*": "participant"})
    make_room(c, olga, "ev.main")
    make_room(c, olga, "ev.other")
    cn = c.connect(ada)
    f1, _ = cn.subscribed("ev.main")
    f2, _ = cn.subscribed("ev.other")
    r = c.ok("Rooms", "Moderate", olga, room="ev.main", user_id="ada", action=p.R.MODERATE_ACTION_REMOVE,
             reason="spam")
    check(r.action.kind == p.M.ACTION_KIND_REMOVE and r.action.until_ms == 0, "REMOVE until readmitted")
    ev, _ = cn.until(lambda f: kind(f) == "room_event", what="the remove event")
    check(ev.room_event.action.kind == p.M.ACTION_KIND_REMOVE, "the removed user is told first")
    f, _ = cn.until(lambda f: kind(f) == "error", what="the cut")
    check(f.request_id == f1.request_id and f.error.rule == p.M.RULE_REMOVED, "then Error{REMOVED}")
    f = cn.recv()
    check(kind(f) == "unsubscribed" and f.unsubscribed.room == "ev.main", "then Unsubscribed")
    # The other room goes on.
    c.ok("Stream", "Publish", olga, room="ev.other", client_msg_id="1", body="still here")
    f, _ = cn.until(lambda f: kind(f) == "event", what="an event of the other room")
    check(f.event.message.room == "ev.other", "the other subscription is untouched")
    f, _ = cn.subscribed("ev.main")
    check(kind(f) == "error" and f.error.rule == p.M.RULE_REMOVED, "subscribing again: REMOVED")
    c.denied("REMOVED", "History", "ListMessages", ada, room="ev.main")
    c.denied("REMOVED", "Stream", "Publish", ada, room="ev.main", client_msg_id="1", body="x")
    names = [x.name for x in c.ok("History", "ListRooms", ada, prefix="ev.").rooms]
    check(names == ["ev.other"], "ListRooms hides the room she was removed from: %s" % names)
    c.ok("Rooms", "Moderate", olga, room="ev.main", user_id="ada", action=p.R.MODERATE_ACTION_READMIT)
    f, _ = cn.subscribed("ev.main")
    check(kind(f) == "subscribed", "readmitted: subscribes again")
    cn.close()
    c.close()


def case_organizers_only(s):
    c = H.Client(s)
    p = c.p
    olga = org_token(s)
    pat = token(s, "pat", rooms={"ev.*": "participant"})
    make_room(c, olga, "ev.main")
    m = c.ok("Stream", "Publish", olga, room="ev.main", client_msg_id="1", body="by olga").message
    for svc, meth, kw in [
            ("Rooms", "UpdateRoom", dict(name="ev.main", mode=p.M.ROOM_MODE_CLOSED)),
            ("Rooms", "DeleteRoom", dict(name="ev.main")),
            ("Rooms", "AddMember", dict(room="ev.main", user_id="pat")),
            ("Rooms", "RemoveMember", dict(room="ev.main", user_id="pat")),
            ("Rooms", "ListMembers", dict(room="ev.main")),
            ("Rooms", "Moderate", dict(room="ev.main", user_id="x", action=p.R.MODERATE_ACTION_REMOVE)),
            ("Rooms", "EraseUser", dict(room="ev.main", user_id="olga")),
            ("History", "EditMessage", dict(room="ev.main", seq=m.seq, body="mine now")),
            ("History", "DeleteMessage", dict(room="ev.main", seq=m.seq))]:
        c.denied("ORGANIZER_ONLY", svc, meth, pat, **kw)
    r = c.ok("History", "GetRoom", olga, name="ev.main")
    check(r.room.mode == p.M.ROOM_MODE_OPEN and r.room.head_seq == 1, "nothing changed")
    # An organizer deletes anyone's message: a stored DELETE_MESSAGE action.
    pm = c.ok("Stream", "Publish", pat, room="ev.main", client_msg_id="1", body="oops").message
    c.ok("History", "DeleteMessage", olga, room="ev.main", seq=pm.seq)
    acts = c.ok("Rooms", "ListActions", pat, room="ev.main").actions
    check(len(acts) == 1 and acts[0].kind == p.M.ACTION_KIND_DELETE_MESSAGE and acts[0].seq == pm.seq
          and acts[0].target_user_id == "pat", "the organizer's delete is logged: %s" % acts)
    c.close()


def case_settings_and_visibility(s):
    c = H.Client(s)
    p = c.p
    olga = org_token(s)
    ev = {"ev.*": "participant"}
    ada = token(s, "ada", rooms=ev)
    make_room(c, olga, "ev.main")
    cn = c.connect(ada)
    f, _ = cn.subscribed("ev.main")
    r = c.ok("Rooms", "UpdateRoom", olga, name="ev.main", title=p.R.TextUpdate(value="Main stage"),
             topic=p.R.TextUpdate(value="Keynotes\nand Q&A"))
    check(r.room.title == "Main stage" and r.room.topic == "Keynotes\nand Q&A"
          and [a.kind for a in r.actions] == [p.M.ACTION_KIND_UPDATE_ROOM], "title and topic: UPDATE_ROOM")
    f, _ = cn.until(lambda f: kind(f) == "room_event", what="the update event")
    check(f.room_event.room.title == "Main stage", "watchers get the new title")
    r = c.ok("Rooms", "UpdateRoom", olga, name="ev.main", topic=p.R.TextUpdate(value=""))
    check(r.room.title == "Main stage" and r.room.topic == "", "an empty topic clears it; the title stays")
    r = c.ok("Rooms", "UpdateRoom", olga, name="ev.main")
    check(len(r.actions) == 0, "an update that changes nothing stores nothing")
    r = c.call("Rooms", "UpdateRoom", olga, name="ev.main", title=p.R.TextUpdate(value="bad\ttitle"))
    check(r.perr == "INVALID_UTF8", "a control character in a title is refused: %r" % r)
    r = c.call("Rooms", "UpdateRoom", olga, name="ev.main", title=p.R.TextUpdate(value="x" * 201))
    check(r.perr == "MALFORMED", "a title over 200 bytes is refused: %r" % r)
    # Members only: the non-member's subscription ends.
    r = c.ok("Rooms", "UpdateRoom", olga, name="ev.main", visibility=p.M.VISIBILITY_MEMBERS)
    check([a.kind for a in r.actions] == [p.M.ACTION_KIND_SET_VISIBILITY], "SET_VISIBILITY stored")
    f, _ = cn.until(lambda f: kind(f) == "error", what="the cut")
    check(f.error.rule == p.M.RULE_MEMBERS_ONLY, "a non-member watching is cut with MEMBERS_ONLY")
    c.denied("MEMBERS_ONLY", "History", "GetRoom", ada, name="ev.main")
    cn.close()
    c.close()


def case_delete_room(s):
    c = H.Client(s)
    p = c.p
    olga = org_token(s)
    ada = token(s, "ada", rooms={"ev.*": "participant"})
    make_room(c, olga, "ev.tmp")
    for i in range(3):
        c.ok("Stream", "Publish", ada, room="ev.tmp", client_msg_id=str(i), body="m%d" % i)
    cn = c.connect(ada)
    f, _ = cn.subscribed("ev.tmp")
    r = c.ok("Rooms", "DeleteRoom", olga, name="ev.tmp")
    check(r.deleted_messages == 3 and r.room.head_seq == 3, "DeleteRoom: 3 messages went")
    f, _ = cn.until(lambda f: kind(f) == "room_event", what="the delete event")
    check(f.room_event.action.kind == p.M.ACTION_KIND_DELETE_ROOM and f.room_event.action.count == 3,
          "watchers see DELETE_ROOM")
    f, _ = cn.until(lambda f: kind(f) == "error", what="the cut")
    check(f.error.code == p.M.ERROR_CODE_ROOM_NOT_FOUND, "then Error{ROOM_NOT_FOUND}")
    check(kind(cn.recv()) == "unsubscribed", "then Unsubscribed")
    for meth, kw in [("GetRoom", dict(name="ev.tmp")), ("ListMessages", dict(room="ev.tmp"))]:
        r = c.call("History", meth, ada, **kw)
        check(r.perr == "ROOM_NOT_FOUND", "%s after the deletion: ROOM_NOT_FOUND" % meth)
    r = c.ok("History", "CreateRoom", olga, name="ev.tmp")
    check(r.created and r.room.head_seq == 3 and r.room.head_rev == 3,
          "the name again: counters go on (%d, %d)" % (r.room.head_seq, r.room.head_rev))
    r = c.ok("History", "ListMessages", ada, room="ev.tmp")
    check(len(r.messages) == 0 and not r.has_more, "and no old message shows")
    cn.close()
    c.close()


def case_erase(s):
    c = H.Client(s)
    p = c.p
    olga = org_token(s)
    ev = {"ev.*": "participant"}
    ada, bob = token(s, "ada", rooms=ev), token(s, "bob", rooms=ev)
    make_room(c, olga, "ev.a")
    make_room(c, olga, "ev.b")
    for room in ("ev.a", "ev.b"):
        c.ok("Stream", "Publish", ada, room=room, client_msg_id="1", body="ada 1")
        c.ok("Stream", "Publish", bob, room=room, client_msg_id="1", body="bob 1")
        c.ok("Stream", "Publish", ada, room=room, client_msg_id="2", body="ada 2")
    watch = c.connect(bob)
    watch.subscribed("ev.a")
    c.denied("ORGANIZER_ONLY", "Rooms", "EraseUser", bob, user_id="ada", room="ev.a")
    c.denied("ORGANIZER_ONLY", "Rooms", "EraseUser", bob, user_id="ada")
    # An organizer of the room erases in it.
    r = c.ok("Rooms", "EraseUser", olga, user_id="ada", room="ev.a")
    check(r.erased == 2 and [x.name for x in r.rooms] == ["ev.a"] and r.rooms[0].head_rev == 5,
          "EraseUser in ev.a: 2 tombstones, head_rev 5: %s" % r)
    evs = [watch.until(lambda f: kind(f) == "event", what="tombstone %d" % i)[0] for i in range(2)]
    check([e.event.type for e in evs] == [p.S.EVENT_TYPE_DELETED] * 2
          and [e.event.message.seq for e in evs] == [1, 3] and [e.event.message.rev for e in evs] == [4, 5]
          and all(e.event.message.author.display_name == "" for e in evs),
          "watchers get each tombstone as a DELETED event with a new rev")
    f, _ = watch.until(lambda f: kind(f) == "room_event", what="the erase action")
    check(f.room_event.action.kind == p.M.ACTION_KIND_ERASE_USER and f.room_event.action.count == 2,
          "and the ERASE_USER action")
    since = c.ok("History", "ListMessages", bob, room="ev.a", after_rev=3)
    check([(m.seq, m.deleted) for m in since.messages] == [(1, True), (3, True)],
          "a reader catching up from rev 3 converges on the tombstones")
    # A user erases their own messages everywhere.
    r = c.ok("Rooms", "EraseUser", ada, user_id="ada")
    check(r.erased == 2 and [x.name for x in r.rooms] == ["ev.b"], "self-erasure in every room: %s" % r)
    left = [m.body for m in c.ok("History", "ListMessages", bob, room="ev.b").messages]
    check(left == ["", "bob 1", ""], "only bob's message keeps its body: %s" % left)
    watch.close()
    c.close()


def case_list_rooms(s):
    c = H.Client(s)
    p = c.p
    olga = org_token(s)
    for name in ("ev1.a", "ev1.b", "ev1.back", "ev2.a", "zz"):
        make_room(c, olga, name, visibility=p.M.VISIBILITY_MEMBERS if name.endswith("back") else 0)
    c.ok("Rooms", "Moderate", olga, room="ev1.b", user_id="ada", action=p.R.MODERATE_ACTION_MUTE)
    ada = token(s, "ada", rooms={"ev1.*": "participant"})
    r = c.ok("History", "ListRooms", ada)
    check([x.name for x in r.rooms] == ["ev1.a", "ev1.b"] and not r.has_more,
          "ada lists the ev1 rooms she may read: %s" % [x.name for x in r.rooms])
    check(r.rooms[1].me.muted and not r.rooms[1].me.can_post and r.rooms[0].me.can_post,
          "each with her own view (muted in ev1.b)")
    r = c.ok("History", "ListRooms", ada, limit=1)
    check([x.name for x in r.rooms] == ["ev1.a"] and r.has_more and r.next_after_name == "ev1.a",
          "a page of one")
    r = c.ok("History", "ListRooms", ada, limit=1, after_name=r.next_after_name)
    check([x.name for x in r.rooms] == ["ev1.b"], "the next page")
    r = c.ok("History", "ListRooms", olga, prefix="ev1.")
    check([x.name for x in r.rooms] == ["ev1.a", "ev1.b", "ev1.back"], "prefix ev1.")
    c.close()


def case_presence_typing(s):
    c = H.Client(s)
    p = c.p
    olga = org_token(s)
    ev = {"ev.*": "participant"}
    make_room(c, olga, "ev.main")
    make_room(c, olga, "ev.back", visibility=p.M.VISIBILITY_MEMBERS)
    ada, bob = token(s, "ada", rooms=ev), token(s, "bob", rooms=ev)
    wa, wb = c.connect(ada), c.connect(bob)
    live = p.S.SessionOptions(presence=True, typing=True)
    for w in (wa, wb):
        w.send(options=live)
        f, _ = w.until(lambda f: kind(f) == "options", what="options")
        check(f.options.presence and f.options.typing, "presence and typing turned on")
    wa.subscribed("ev.main")
    f, _ = wb.subscribed("ev.main")
    wa.send(presence=p.S.PresenceUpdate(room="ev.main", here=True))
    f, _ = wb.until(lambda f: kind(f) == "presence", what="presence after ada joined")
    check(f.presence.count == 1 and [u.id for u in f.presence.users] == ["ada"], "bob sees ada here: %s" % f)
    wb.send(presence=p.S.PresenceUpdate(room="ev.main", here=True))
    f, _ = wa.until(lambda f: kind(f) == "presence" and f.presence.count == 2, what="count 2")
    check([u.id for u in f.presence.users] == ["ada", "bob"] and not f.presence.truncated,
          "both here, by display name")
    # A second stream of the same user does not count twice.
    wa2 = c.connect(ada)
    wa2.send(options=live)
    wa2.send(presence=p.S.PresenceUpdate(room="ev.main", here=True))
    f, _ = wa2.subscribed("ev.main")
    f, _ = wa2.until(lambda f: kind(f) == "presence", what="the picture after Subscribed")
    check(f.presence.count == 2, "a new subscriber gets the picture after Subscribed; ada counted once")
    wa2.close()  # ada's other stream ends: she is still here
    wa.send(presence=p.S.PresenceUpdate(room="ev.main", here=False))
    f, _ = wb.until(lambda f: kind(f) == "presence" and f.presence.count == 1, what="ada gone")
    check([u.id for u in f.presence.users] == ["bob"], "ada gone after her streams left")
    # Being here needs read access.
    rid = wa.send(presence=p.S.PresenceUpdate(room="ev.back", here=True))
    f, _ = wa.until(lambda f: f.request_id == rid, what="refusal")
    check(kind(f) == "error" and f.error.rule == p.M.RULE_MEMBERS_ONLY, "presence in a room she may not read: refused")
    # Typing: passed on once per 2 s, refused while muted.
    wa.send(typing=p.S.Typing(room="ev.main"))
    f, _ = wb.until(lambda f: kind(f) == "typing", what="typing")
    check(f.typing.user.id == "ada" and f.typing.room == "ev.main", "bob sees ada typing")
    wa.send(typing=p.S.Typing(room="ev.main"))
    wa.send(ping=p.S.Ping(nonce=5))
    wa.until(lambda f: kind(f) == "pong", what="pong")
    c.ok("Stream", "Publish", olga, room="ev.main", client_msg_id="sync", body="sync")
    f, seen = wb.until(lambda f: kind(f) == "event", what="the sync event")
    check(not any(kind(x) == "typing" for x in seen), "a second typing within 2 s is dropped")
    c.ok("Rooms", "Moderate", olga, room="ev.main", user_id="ada", action=p.R.MODERATE_ACTION_MUTE)
    time.sleep(2.1)
    rid = wa.send(typing=p.S.Typing(room="ev.main"))
    f, _ = wa.until(lambda f: f.request_id == rid, what="typing refusal")
    check(kind(f) == "error" and f.error.rule == p.M.RULE_MUTED, "a muted user's typing is refused")
    # Closing bob's stream makes him leave.
    wc = c.connect(olga)
    wc.send(options=live)
    wc.subscribed("ev.main")
    # A stream that did not ask gets neither.
    quiet = c.connect(olga)
    quiet.subscribed("ev.main")
    wb.close()
    f, _ = wc.until(lambda f: kind(f) == "presence" and f.presence.count == 0, what="bob gone")
    check(True, "a stream that ends takes its users with it")
    c.ok("Stream", "Publish", olga, room="ev.main", client_msg_id="sync2", body="sync")
    f, seen = quiet.until(lambda f: kind(f) == "event", what="quiet's event")
    check(not any(kind(x) in ("presence", "typing") for x in seen),
          "a stream without the options gets no presence or typing: %s" % [kind(x) for x in seen])
    for x in (wa, wc, quiet):
        x.close()
    c.close()


def case_read_state(s):
    c = H.Client(s)
    p = c.p
    olga = org_token(s)
    ev = {"ev.*": "participant"}
    make_room(c, olga, "ev.a")
    make_room(c, olga, "ev.b")
    ada = token(s, "ada", rooms=ev)
    for i in range(5):
        c.ok("Stream", "Publish", olga, room="ev.a", client_msg_id=str(i), body="m%d" % i)
    c.ok("Stream", "Publish", ada, room="ev.a", client_msg_id="mine", body="her own")
    c.ok("Stream", "Publish", olga, room="ev.b", client_msg_id="b", body="b")
    rooms = {r.name: r.me for r in c.ok("History", "ListRooms", ada, prefix="ev.").rooms}
    check(rooms["ev.a"].unread_count == 5 and rooms["ev.b"].unread_count == 1,
          "unread before any read: others' messages (%d, %d)" % (rooms["ev.a"].unread_count,
                                                                   rooms["ev.b"].unread_count))
    r = c.ok("Rooms", "MarkRead", ada, room="ev.a", seq=3, rev=3)
    check(r.last_read_seq == 3 and r.unread_count == 2, "MarkRead up to 3: 2 unread (%s)" % r)
    r = c.ok("Rooms", "MarkRead", ada, room="ev.a", seq=1, rev=1)
    check(r.last_read_seq == 3 and r.last_read_rev == 3, "a mark below the stored one keeps it")
    g = c.ok("History", "GetRoom", ada, name="ev.a")
    check(g.room.me.last_read_seq == 3 and g.room.me.unread_count == 2, "GetRoom: me has the read state")
    c.ok("History", "DeleteMessage", olga, room="ev.a", seq=5)
    cn = c.connect(ada)
    f, _ = cn.subscribed("ev.a")
    check(f.subscribed.room.me.unread_count == 1 and f.subscribed.room.me.last_read_rev == 3,
          "Subscribed: a deleted message is no longer unread")
    c.denied("NOT_GRANTED", "Rooms", "MarkRead", token(s, "zed", rooms={"x.*": "participant"}),
             room="ev.a", seq=1, rev=1)
    cn.close()
    c.close()


CASES = {name[5:]: fn for name, fn in globals().items() if name.startswith("case_")}

if __name__ == "__main__":
    sys.exit(H.run(CASES, sys.argv, lambda name: H.gwharness.Stack(
        start_gateway=False, pd_args=H.store_args(name))))
