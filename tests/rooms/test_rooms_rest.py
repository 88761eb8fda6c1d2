#!/usr/bin/python3
"""Rooms over the gateway's REST (urllib), against a real parleyd and
parley-gateway: each access rule refused with HTTP 403 and the documented
body {"code":"PERMISSION_DENIED","rule":...,"detail":...}, and the room
management and moderation routes (list, update, delete, members,
moderation, actions, erasure) for organizers, refused for participants.

usage: test_rooms_rest.py [case ...]   (PARLEYD, PARLEY_GATEWAY in the env)"""
import sys

import roomsharness as H
from roomsharness import check, token


def org(s, sub="olga"):
    return token(s, sub, role="organizer")


def denied(s, rule, method, path, tok, body=None):
    st, r = s.jrequest(method, path, body, tok)
    ok = (st == 403 and isinstance(r, dict) and r.get("code") == "PERMISSION_DENIED"
          and r.get("rule") == rule and ("rule %s" % rule) in r.get("detail", ""))
    check(ok, "%s %s: 403 %s (%s %s)" % (method, path, rule, st, r))
    return r


def ok(s, method, path, tok, body=None):
    st, r = s.jrequest(method, path, body, tok)
    if st != 200:
        raise H.Failed("%s %s: %s %s" % (method, path, st, r))
    return r


def setup(s):
    olga = org(s)
    ok(s, "POST", "/v1/rooms", olga, {"name": "ev.main"})
    ok(s, "POST", "/v1/rooms", olga, {"name": "ev.back", "visibility": "VISIBILITY_MEMBERS"})
    ok(s, "POST", "/v1/rooms", olga, {"name": "ev.news", "mode": "ROOM_MODE_ANNOUNCEMENTS"})
    ok(s, "POST", "/v1/rooms", olga, {"name": "other-event.main"})
    return olga


def case_rules(s):
    c = H.Client(s)
    p = c.p
    olga = setup(s)
    ev = {"ev.*": "participant"}
    ada, bob = token(s, "ada", rooms=ev), token(s, "bob", rooms=ev)
    m = c.ok("Stream", "Publish", ada, room="ev.main", client_msg_id="1", body="ada's").message
    c.ok("Stream", "Publish", olga, room="ev.main", client_msg_id="1", body="olga's")
    denied(s, "NOT_GRANTED", "GET", "/v1/rooms/other-event.main/messages", ada)
    denied(s, "NOT_GRANTED", "GET", "/v1/rooms/other-event.nothing", ada)
    denied(s, "MEMBERS_ONLY", "GET", "/v1/rooms/ev.back/messages", ada)
    denied(s, "MEMBERS_ONLY", "GET", "/v1/rooms/ev.back", ada)
    denied(s, "ORGANIZER_ONLY", "POST", "/v1/rooms", ada, {"name": "ev.mine"})
    denied(s, "ORGANIZER_ONLY", "PATCH", "/v1/rooms/ev.main/messages/2", ada, {"body": "not mine"})
    denied(s, "ORGANIZER_ONLY", "DELETE", "/v1/rooms/ev.main/messages/2", ada)
    r = ok(s, "GET", "/v1/rooms/ev.news", ada)
    check(not r["me"].get("canPost") and r["me"]["postRule"] == "RULE_ANNOUNCEMENTS",
          "GET room: me says announcements")
    c.ok("Rooms", "Moderate", olga, room="ev.main", user_id="ada", action=p.R.MODERATE_ACTION_MUTE)
    denied(s, "MUTED", "PATCH", "/v1/rooms/ev.main/messages/%d" % m.seq, ada, {"body": "edited"})
    r = ok(s, "DELETE", "/v1/rooms/ev.main/messages/%d" % m.seq, ada)
    check(r["deleted"] is True, "a muted user still deletes her own message")
    c.ok("Rooms", "Moderate", olga, room="ev.main", user_id="bob", action=p.R.MODERATE_ACTION_REMOVE)
    denied(s, "REMOVED", "GET", "/v1/rooms/ev.main/messages", bob)
    denied(s, "REMOVED", "GET", "/v1/rooms/ev.main/messages/2", bob)
    c.ok("Rooms", "UpdateRoom", olga, name="ev.main", mode=p.M.ROOM_MODE_CLOSED)
    olga_msg = c.ok("History", "ListMessages", olga, room="ev.main").messages[-1]
    denied(s, "ROOM_CLOSED", "PATCH", "/v1/rooms/ev.main/messages/%d" % olga_msg.seq, olga, {"body": "late"})
    # Without a token: 401 before any rule.
    st, r = s.jrequest("GET", "/v1/rooms/ev.main/messages")
    check(st == 401 and r["code"] == "UNAUTHENTICATED", "no token: 401")
    c.close()


def case_management(s):
    olga = setup(s)
    ev = {"ev.*": "participant"}
    ada = token(s, "ada", rooms=ev)
    # List: only what ada may read, with her view; prefix and paging.
    r = ok(s, "GET", "/v1/rooms", ada)
    check([x["name"] for x in r["rooms"]] == ["ev.main", "ev.news"], "GET /v1/rooms lists ada's rooms: %s" % r)
    r = ok(s, "GET", "/v1/rooms?prefix=ev.&limit=1", olga)
    check([x["name"] for x in r["rooms"]] == ["ev.back"] and r["hasMore"] is True
          and r["nextAfterName"] == "ev.back", "prefix and limit: %s" % r)
    r = ok(s, "GET", "/v1/rooms?prefix=ev.&after=ev.back", olga)
    check([x["name"] for x in r["rooms"]] == ["ev.main", "ev.news"], "after: %s" % r)
    st, r = s.jrequest("GET", "/v1/rooms?limit=x", token=olga)
    check(st == 400 and r["code"] == "BAD_CURSOR", "a bad limit: 400 BAD_CURSOR (%s %s)" % (st, r))
    # Update (title, topic, mode) and who may.
    denied(s, "ORGANIZER_ONLY", "PATCH", "/v1/rooms/ev.main", ada, {"mode": "ROOM_MODE_CLOSED"})
    r = ok(s, "PATCH", "/v1/rooms/ev.main", olga,
           {"title": {"value": "Main stage"}, "topic": {"value": "Keynotes"}, "mode": "ROOM_MODE_ANNOUNCEMENTS"})
    check(r["room"]["title"] == "Main stage" and r["room"]["mode"] == "ROOM_MODE_ANNOUNCEMENTS"
          and [a["kind"] for a in r["actions"]] == ["ACTION_KIND_UPDATE_ROOM", "ACTION_KIND_SET_MODE"],
          "PATCH /v1/rooms/ev.main: %s" % r)
    st, r = s.jrequest("PATCH", "/v1/rooms/ev.main", {"mode": "ROOM_MODE_NOPE"}, olga)
    check(st == 400 and r["code"] == "MALFORMED", "an unknown mode name: 400 MALFORMED (%s)" % r)
    # Members.
    denied(s, "MEMBERS_ONLY", "POST", "/v1/rooms/ev.back/members", ada, {"userId": "ada"})
    r = ok(s, "POST", "/v1/rooms/ev.back/members", olga, {"userId": "ada", "role": "ROLE_PARTICIPANT"})
    check(r["member"]["userId"] == "ada" and r["action"]["kind"] == "ACTION_KIND_ADD_MEMBER", "add member")
    r = ok(s, "POST", "/v1/rooms/ev.back/members", olga, {"userId": "sam@example.org"})
    r = ok(s, "GET", "/v1/rooms/ev.back/members", olga)
    check([m["userId"] for m in r["members"]] == ["ada", "sam@example.org"], "list members: %s" % r)
    denied(s, "ORGANIZER_ONLY", "GET", "/v1/rooms/ev.back/members", ada)
    ok(s, "GET", "/v1/rooms/ev.back/messages", ada)  # the member reads now
    r = ok(s, "DELETE", "/v1/rooms/ev.back/members/sam%40example.org", olga)
    check(r["removed"] is True, "remove a member by an escaped id")
    # Moderation and the log.
    denied(s, "ORGANIZER_ONLY", "POST", "/v1/rooms/ev.main/moderation", ada,
           {"userId": "bob", "action": "MODERATE_ACTION_MUTE"})
    r = ok(s, "POST", "/v1/rooms/ev.main/moderation", olga,
           {"userId": "bob", "action": "MODERATE_ACTION_MUTE", "durationMs": "60000", "reason": "calm"})
    check(r["action"]["kind"] == "ACTION_KIND_MUTE" and r["action"]["reason"] == "calm", "moderate: mute")
    r = ok(s, "GET", "/v1/rooms/ev.main/actions", ada)
    kinds = [a["kind"] for a in r["actions"]]
    check(kinds == ["ACTION_KIND_UPDATE_ROOM", "ACTION_KIND_SET_MODE", "ACTION_KIND_MUTE"],
          "readers list the actions: %s" % kinds)
    r = ok(s, "GET", "/v1/rooms/ev.main/actions?after=2&limit=5", ada)
    check([a["id"] for a in r["actions"]] == ["3"], "actions after 2")
    st, r = s.jrequest("POST", "/v1/rooms/ev.main/moderation", b"{not json", olga)
    check(st == 400 and r["code"] == "MALFORMED", "a bad body: 400 MALFORMED")
    st, r = s.jrequest("GET", "/v1/rooms/ev.main/moderation", None, olga)
    check(st == 405, "GET on the moderation route: 405")
    # Erasure: one's own messages, and an organizer for another.
    bob = token(s, "bob", rooms=ev)
    ok(s, "POST", "/v1/rooms/ev.main/moderation", olga, {"userId": "bob", "action": "MODERATE_ACTION_UNMUTE"})
    ok(s, "PATCH", "/v1/rooms/ev.main", olga, {"mode": "ROOM_MODE_OPEN"})
    c = H.Client(s)
    for i in range(3):
        c.ok("Stream", "Publish", bob, room="ev.main", client_msg_id=str(i), body="bob %d" % i)
    denied(s, "ORGANIZER_ONLY", "POST", "/v1/users/bob/erase", ada, {"room": "ev.main"})
    r = ok(s, "POST", "/v1/users/bob/erase", olga, {"room": "ev.main"})
    check(r["erased"] == "3", "an organizer erases bob's 3 messages in the room: %s" % r)
    r = ok(s, "POST", "/v1/users/bob/erase", bob, {})
    check(r.get("erased", "0") == "0", "erasing again finds nothing")
    # Delete the room.
    denied(s, "ORGANIZER_ONLY", "DELETE", "/v1/rooms/ev.main", ada)
    r = ok(s, "DELETE", "/v1/rooms/ev.main", olga)
    check(r["deletedMessages"] == "3", "DELETE /v1/rooms/ev.main: %s" % r)
    st, r = s.jrequest("GET", "/v1/rooms/ev.main", None, olga)
    check(st == 404 and r["code"] == "ROOM_NOT_FOUND", "then 404")
    c.close()


def case_read_state(s):
    olga = setup(s)
    ada = token(s, "ada", rooms={"ev.*": "participant"})
    c = H.Client(s)
    for i in range(4):
        c.ok("Stream", "Publish", olga, room="ev.main", client_msg_id=str(i), body="m%d" % i)
    r = ok(s, "GET", "/v1/rooms?prefix=ev.", ada)
    me = {x["name"]: x["me"] for x in r["rooms"]}
    check(me["ev.main"].get("unreadCount") == 4, "GET /v1/rooms: 4 unread (%s)" % me["ev.main"])
    r = ok(s, "POST", "/v1/rooms/ev.main/read", ada, {"seq": "3", "rev": "3"})
    check(r["lastReadSeq"] == "3" and r["unreadCount"] == 1, "POST read: %s" % r)
    r = ok(s, "GET", "/v1/rooms/ev.main", ada)
    check(r["me"]["lastReadSeq"] == "3" and r["me"]["unreadCount"] == 1, "GET room: read state")
    denied(s, "MEMBERS_ONLY", "POST", "/v1/rooms/ev.back/read", ada, {"seq": "1"})
    st, r = s.jrequest("GET", "/v1/rooms/ev.main/read", token=ada)
    check(st == 405, "GET on read: 405")
    c.close()


CASES = {name[5:]: fn for name, fn in globals().items() if name.startswith("case_")}

if __name__ == "__main__":
    sys.exit(H.run(CASES, sys.argv, lambda name: H.gwharness.Stack()))
