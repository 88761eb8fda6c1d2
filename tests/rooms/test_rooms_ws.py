#!/usr/bin/python3
"""Rooms through the gateway's WebSocket (Python websockets; JSON and
binary subprotocols), against a real parleyd and parley-gateway: every
access rule refused with an error frame naming it, and the gateway never
widening access: a user is attached to the room's shared upstream
subscription only after the core said that user may read it, publishes are
checked as the user, room events reach every watcher, and a removal, a
members-only switch or a deleted room ends exactly the subscriptions that
lost the room.

usage: test_rooms_ws.py [case ...]   (PARLEYD, PARLEY_GATEWAY in the env)"""
import asyncio
import sys

import roomsharness as H
from roomsharness import WS, check, token, wkind

DENIED = "ERROR_CODE_PERMISSION_DENIED"


def org(s, sub="olga"):
    return token(s, sub, role="organizer")


def refused(f, rule, what):
    e = f.get("error", {})
    return check(e.get("code") == DENIED and e.get("rule") == "RULE_" + rule
                 and ("rule %s" % rule) in e.get("detail", ""),
                 "%s: error frame names %s (%s)" % (what, rule, f))


def setup_rooms(s, c):
    p = c.p
    olga = org(s)
    c.ok("History", "CreateRoom", olga, name="ev.main")
    c.ok("History", "CreateRoom", olga, name="ev.back", visibility=p.M.VISIBILITY_MEMBERS)
    c.ok("History", "CreateRoom", olga, name="ev.news", mode=p.M.ROOM_MODE_ANNOUNCEMENTS)
    c.ok("History", "CreateRoom", olga, name="ev.old", mode=p.M.ROOM_MODE_CLOSED)
    c.ok("History", "CreateRoom", olga, name="other-event.main")
    return olga


def run(coro):
    return asyncio.run(coro)


def case_subscribe_rules(s):
    c = H.Client(s)
    p = c.p
    olga = setup_rooms(s, c)
    ev = {"ev.*": "participant"}
    ada = token(s, "ada", rooms=ev)
    c.ok("Rooms", "Moderate", olga, room="ev.main", user_id="bob", action=p.R.MODERATE_ACTION_REMOVE)

    async def go(json_proto):
        w = await WS(s, ada, json_proto).open()
        f, _ = await w.subscribe("other-event.main")
        refused(f, "NOT_GRANTED", "a room the token does not grant (%s)" % ("json" if json_proto else "binary"))
        f, _ = await w.subscribe("ev.back")
        refused(f, "MEMBERS_ONLY", "a members-only room")
        f, _ = await w.subscribe("ev.main")
        check(wkind(f) == "subscribed" and f["subscribed"]["room"]["me"]["role"] == "ROLE_PARTICIPANT"
              and f["subscribed"]["room"]["me"]["canPost"] is True,
              "a granted room: Subscribed with the user's own view")
        f, _ = await w.subscribe("ev.news")
        check(wkind(f) == "subscribed" and f["subscribed"]["room"]["me"].get("postRule") == "RULE_ANNOUNCEMENTS"
              and f["subscribed"]["room"]["mode"] == "ROOM_MODE_ANNOUNCEMENTS",
              "announcements: may read, Subscribed says may not post and why")
        await w.close()
        bob = await WS(s, token(s, "bob", rooms=ev), json_proto).open()
        f, _ = await bob.subscribe("ev.main")
        refused(f, "REMOVED", "a removed user")
        await bob.close()
    run(go(True))
    run(go(False))
    c.close()


def case_no_widening(s):
    """The room is live on the gateway's shared link (another user watches
    it, its ring full of events): a user the core refuses still gets
    nothing of it, by subscribe or resume."""
    c = H.Client(s)
    olga = setup_rooms(s, c)
    for i in range(5):
        c.ok("Stream", "Publish", olga, room="ev.back", client_msg_id=str(i), body="secret %d" % i)

    async def go():
        o = await WS(s, olga).open()
        f, replay = await o.subscribe("ev.back")
        check(wkind(f) == "subscribed" and len(replay) == 5, "the organizer reads the backstage (5 replayed)")
        before = s.metrics()
        mallory = await WS(s, token(s, "mallory", rooms={"ev.*": "participant"})).open()
        for after in (0, 3):
            f, seen = await mallory.subscribe("ev.back", after)
            refused(f, "MEMBERS_ONLY", "subscribe with resume %d while the room is live" % after)
            check(not any(wkind(x) == "event" for x in seen), "no event of it before the refusal")
        await o.publish("ev.back", "live-1", "still secret")
        f = await mallory.recv(1.0)
        check(f is None, "no live event reaches the refused session: %s" % f)
        f = await mallory.publish("ev.back", "m1", "let me in")
        refused(f, "MEMBERS_ONLY", "a publish into it")
        after = s.metrics()
        check(after["parley_gateway_access_refused_total"] - before["parley_gateway_access_refused_total"] == 2,
              "the gateway counts the two refusals")
        check(after["parley_gateway_access_checks_total"] > before["parley_gateway_access_checks_total"],
              "and asked the core each time")
        await mallory.close()
        await o.close()
    run(go())
    c.close()


def case_write_while_checking(s):
    """A session's socket is written (a pong) while its subscribes are
    still being checked by the core: the gateway writes what it has, the
    subscriptions go on, nothing breaks. (The writer used to pull from a
    subscription with no room yet, and the gateway crashed: the cluster's
    clients ping every second while they subscribe.)"""
    c = H.Client(s)
    setup_rooms(s, c)
    ada = token(s, "ada", rooms={"ev.*": "participant"})
    rooms = ["ev.main", "ev.news", "ev.old"]

    async def go():
        a = await WS(s, ada).open()
        subs, pings = {}, set()
        for i, r in enumerate(rooms):  # no waiting: each pong is written at once
            subs[await a.send(subscribe={"room": r, "resumeAfterRev": "0"})] = r
            pings.add(await a.send(ping={"nonce": str(i + 1)}))
        got = set()
        while not (pings <= got and set(subs) <= got):
            f = await a.recv(10)
            if f is None:
                break
            if (wkind(f) == "pong" and f.get("requestId") in pings) or (
                    wkind(f) == "subscribed" and f.get("requestId") in subs):
                got.add(f["requestId"])
        check(pings <= got, "every ping answered while the subscribes were checked")
        check(set(subs) <= got, "every subscribe answered Subscribed: %s" % sorted(
            subs[x] for x in set(subs) - got))
        check(s.gw.poll() is None, "the gateway is still running")
        c.ok("Stream", "Publish", token(s, "olga", role="organizer"), room="ev.main", client_msg_id="w1",
             body="after")
        f, _ = await a.until(lambda f: wkind(f) == "event", what="a live event")
        check(f["event"]["message"]["body"] == "after", "and the subscriptions are live")
        await a.close()
    run(go())
    c.close()


def case_publish_rules(s):
    c = H.Client(s)
    p = c.p
    olga = setup_rooms(s, c)
    ada = token(s, "ada", rooms={"ev.*": "participant"})
    c.ok("Rooms", "Moderate", olga, room="ev.main", user_id="ada", action=p.R.MODERATE_ACTION_MUTE,
         duration_ms=600_000)

    async def go():
        w = await WS(s, ada).open()
        f = await w.publish("ev.main", "1", "hello?")
        refused(f, "MUTED", "a muted user's publish")
        check("until 20" in f["error"]["detail"], "the detail says until when")
        f = await w.publish("ev.news", "2", "me too")
        refused(f, "ANNOUNCEMENTS", "a participant's publish in announcements")
        f = await w.publish("ev.old", "3", "hello archive")
        refused(f, "ROOM_CLOSED", "a publish in a closed room")
        f = await w.publish("other-event.main", "4", "hi")
        refused(f, "NOT_GRANTED", "a publish where the token grants nothing")
        await w.close()
        o = await WS(s, olga).open()
        f = await o.publish("ev.news", "1", "Doors open at 9")
        check(wkind(f) == "ack" and f["ack"]["message"]["author"]["role"] == "ROLE_ORGANIZER",
              "an organizer posts in announcements")
        await o.close()
    run(go())
    c.close()


def case_live_cut(s):
    c = H.Client(s)
    p = c.p
    olga = setup_rooms(s, c)
    ev = {"ev.*": "participant"}
    ada, bob = token(s, "ada", rooms=ev), token(s, "bob", rooms=ev)
    c.ok("Rooms", "AddMember", olga, room="ev.back", user_id="ada")
    c.ok("Rooms", "AddMember", olga, room="ev.back", user_id="bob")

    async def go():
        a = await WS(s, ada).open()
        b = await WS(s, bob, json_proto=False).open()
        fa, _ = await a.subscribe("ev.main")
        fb, _ = await b.subscribe("ev.main")
        await a.subscribe("ev.back")
        await b.subscribe("ev.back")
        # Removing bob from ev.main: both see the action; bob loses the room.
        c.ok("Rooms", "Moderate", olga, room="ev.main", user_id="bob", action=p.R.MODERATE_ACTION_REMOVE,
             reason="spam")
        ev_b, _ = await b.until(lambda f: wkind(f) == "roomEvent", what="the remove event (bob)")
        check(ev_b["roomEvent"]["action"]["kind"] == "ACTION_KIND_REMOVE"
              and ev_b["roomEvent"]["action"]["targetUserId"] == "bob"
              and ev_b["roomEvent"]["action"]["reason"] == "spam", "bob sees the action (binary)")
        ev_a, _ = await a.until(lambda f: wkind(f) == "roomEvent", what="the remove event (ada)")
        check(ev_a["roomEvent"]["action"]["actor"]["id"] == "olga", "ada sees it too, with the actor (JSON)")
        f, _ = await b.until(lambda f: wkind(f) == "error", what="bob's cut")
        refused(f, "REMOVED", "bob's subscription ends")
        check(f["requestId"] == fb["requestId"], "on the request id of his subscribe")
        f, _ = await b.until(lambda f: wkind(f) == "unsubscribed", what="Unsubscribed")
        check(f["unsubscribed"]["room"] == "ev.main", "then Unsubscribed")
        c.ok("Stream", "Publish", olga, room="ev.main", client_msg_id="after", body="after the removal")
        f, _ = await a.until(lambda f: wkind(f) == "event", what="ada's event")
        check(f["event"]["message"]["body"] == "after the removal", "ada goes on receiving")
        f = await b.recv(0.8)
        check(f is None or not (wkind(f) == "event" and f["event"]["message"]["room"] == "ev.main"),
              "bob does not: %s" % f)
        # Ending bob's membership cuts ev.back for him only.
        c.ok("Rooms", "RemoveMember", olga, room="ev.back", user_id="bob")
        f, _ = await b.until(lambda f: wkind(f) == "error", what="bob's backstage cut")
        refused(f, "MEMBERS_ONLY", "the ended membership ends the backstage subscription")
        # Members only for ev.main: ada (no member there) is cut too.
        c.ok("Rooms", "UpdateRoom", olga, name="ev.main", visibility=p.M.VISIBILITY_MEMBERS)
        f, _ = await a.until(lambda f: wkind(f) == "error", what="ada's cut")
        refused(f, "MEMBERS_ONLY", "a room made members-only ends a non-member's subscription")
        c.ok("Stream", "Publish", olga, room="ev.back", client_msg_id="b1", body="backstage goes on")
        f, _ = await a.until(lambda f: wkind(f) == "event", what="ada's backstage event")
        check(f["event"]["message"]["room"] == "ev.back", "ada keeps the room she is a member of")
        await a.close()
        await b.close()
    run(go())
    c.close()


def case_room_events_and_delete(s):
    c = H.Client(s)
    p = c.p
    olga = setup_rooms(s, c)
    ada = token(s, "ada", rooms={"ev.*": "participant"})

    async def go():
        a = await WS(s, ada).open()
        await a.subscribe("ev.main")
        c.ok("Rooms", "Moderate", olga, room="ev.main", user_id="ada", action=p.R.MODERATE_ACTION_MUTE)
        f, _ = await a.until(lambda f: wkind(f) == "roomEvent", what="mute event")
        check(f["roomEvent"]["action"]["kind"] == "ACTION_KIND_MUTE", "the muted user is told live")
        c.ok("Rooms", "UpdateRoom", olga, name="ev.main", mode=p.M.ROOM_MODE_CLOSED,
             title=p.R.TextUpdate(value="Archive"))
        kinds = set()
        for _ in range(2):
            f, _ = await a.until(lambda f: wkind(f) == "roomEvent", what="update events")
            kinds.add(f["roomEvent"]["action"]["kind"])
            room = f["roomEvent"]["room"]
        check(kinds == {"ACTION_KIND_UPDATE_ROOM", "ACTION_KIND_SET_MODE"} and room["mode"] == "ROOM_MODE_CLOSED"
              and room["title"] == "Archive", "title and mode changes arrive with the room after")
        c.ok("Rooms", "DeleteRoom", olga, name="ev.main")
        f, _ = await a.until(lambda f: wkind(f) == "roomEvent", what="delete event")
        check(f["roomEvent"]["action"]["kind"] == "ACTION_KIND_DELETE_ROOM", "DELETE_ROOM arrives")
        f, _ = await a.until(lambda f: wkind(f) == "error", what="the end")
        check(f["error"]["code"] == "ERROR_CODE_ROOM_NOT_FOUND", "then ROOM_NOT_FOUND")
        f, _ = await a.until(lambda f: wkind(f) == "unsubscribed", what="Unsubscribed")
        check(True, "then Unsubscribed")
        # The name again: a fresh room, a fresh upstream subscription.
        c.ok("History", "CreateRoom", olga, name="ev.main")
        f, _ = await a.subscribe("ev.main")
        check(wkind(f) == "subscribed", "subscribing to the re-created room works")
        c.ok("Stream", "Publish", olga, room="ev.main", client_msg_id="new", body="fresh")
        f, _ = await a.until(lambda f: wkind(f) == "event", what="event in the new room")
        check(f["event"]["message"]["body"] == "fresh", "and goes live")
        await a.close()
    run(go())
    c.close()


def case_presence_two_gateways(s):
    """Presence counted in the core: users on two gateways in one room."""
    c = H.Client(s)
    olga = setup_rooms(s, c)
    first_ws = s.ws
    s.start_gateway()  # a second gateway on the same core
    second_ws = s.ws
    ev = {"ev.*": "participant"}
    ada, bob = token(s, "ada", rooms=ev), token(s, "bob", rooms=ev)
    live = {"batch": False, "presence": True, "typing": True}

    def pres_pred(count):
        return lambda f: wkind(f) == "presence" and f["presence"].get("count", 0) == count

    async def go():
        s.ws = first_ws
        a = await WS(s, ada).open()
        await a.request(options=live)
        a2 = await WS(s, ada, json_proto=False).open()  # ada's second tab
        await a2.request(options=live)
        s.ws = second_ws
        b = await WS(s, bob).open()
        await b.request(options=live)
        quiet = await WS(s, olga).open()  # asked for nothing
        # (a session may be told who is here before or after its
        # Subscribed: both are the picture as it is)
        _, early = await a.subscribe("ev.main")
        await a2.subscribe("ev.main")
        f = next((x for x in early if pres_pred(1)(x)), None)
        if f is None:
            f, _ = await a.until(pres_pred(1), what="presence 1")
        check([u["id"] for u in f["presence"]["users"]] == ["ada"], "ada's two tabs count once")
        _, early = await b.subscribe("ev.main")
        f, _ = await a.until(pres_pred(2), what="presence 2 on gateway 1")
        check([u["id"] for u in f["presence"]["users"]] == ["ada", "bob"],
              "a user on the other gateway is seen: %s" % f)
        f = next((x for x in early if pres_pred(2)(x)), None)
        if f is None:
            f, _ = await b.until(pres_pred(2), what="presence 2 on gateway 2")
        check(True, "and the other way round")
        await quiet.subscribe("ev.main")
        # Typing crosses gateways too, and does not echo to the typist.
        await b.send(typing={"room": "ev.main"})
        f, _ = await a.until(lambda f: wkind(f) == "typing", what="typing")
        check(f["typing"]["user"]["id"] == "bob", "bob's typing reaches ada on the other gateway")
        # ada closes one tab: still here; then the other: gone.
        await a2.close()
        await b.send(unsubscribe={"room": "ev.main"})
        await b.subscribe("ev.main")  # (re-subscribing bob changes nothing either)
        await a.close()
        # (olga's quiet session is here too: presence follows subscriptions,
        # whether or not a session asked to be told of it)
        f, _ = await b.until(lambda f: wkind(f) == "presence" and
                             "ada" not in [u["id"] for u in f["presence"]["users"]], what="ada gone")
        check([u["id"] for u in f["presence"]["users"]] == ["bob", "olga"] and f["presence"]["count"] == 2,
              "ada left when her last tab closed: %s" % f)
        seen = []
        while True:
            x = await quiet.recv(0.7)
            if x is None:
                break
            seen.append(wkind(x))
        check("presence" not in seen and "typing" not in seen,
              "a session that did not ask gets neither: %s" % seen)
        await b.close()
        await quiet.close()
    run(go())
    c.close()


CASES = {name[5:]: fn for name, fn in globals().items() if name.startswith("case_")}

if __name__ == "__main__":
    sys.exit(H.run(CASES, sys.argv, lambda name: H.gwharness.Stack()))
