"""The reference model of tallyd's observable tally, written from the docs
(docs/ELECTION.md, README.md, ../shared/DESIGN.md), not from lib/.

Exact arithmetic only (fractions.Fraction).  The model knows:
  - definitions: provinces (own allocation replaces the election's),
    coalitions with aliases, a coalition's own threshold or exemption;
  - the province allocation for every method the docs list, with the
    threshold (province / national scope, of valid / list), the tie rules
    (votes, lot) and pending seats, the Hagenbach-Bischoff give-back;
  - lots (in force while the same lists are tied);
  - national aggregation (votes and district seats summed per coalition,
    pending counted once, ranking seats desc, votes desc, id asc).
The levelling tier is NOT modelled: for a definition with one, district
seats are still checked against the model, the tier only by invariants.

A result the docs do not define (a province whose taking-part lists have no
votes at all) is None: the checker skips it.
"""
from fractions import Fraction as F

DIVISOR = ("dhondt", "sainte-lague")
LR = ("hare", "droop", "hagenbach-bischoff", "hagenbach-bischoff-ceil")


class Undefined(Exception):
    pass


def divisor(method, first, k):
    """The k-th divisor (k = 0 is the first seat)."""
    if k == 0:
        return first
    return F(k + 1) if method == "dhondt" else F(2 * k + 1)


def lot_order(order, tied):
    return [x for x in order if x in tied]


class Result:
    """One province's allocation: firm seats by list, pending groups."""

    def __init__(self):
        self.seats = {}          # list id -> firm seats
        self.pending = []        # [(seats, sorted tied list ids)]
        self.status = {}         # list id -> passed/failed/excluded/exempt/none
        self.over = False        # a Hagenbach-Bischoff S + 1 give-back happened

    def pending_seats(self):
        return sum(s for s, _ in self.pending)


def _break(cands, r, ties, votes, key):
    """Award r seats among cands (list ids) with the keys equal at the
    boundary; return (winners, pending (seats, tied) or None).  cands are
    sorted best first by key; key(l) is what must be equal to tie."""
    if r <= 0:
        return [], None
    if len(cands) <= r:
        return list(cands), None
    bound = key(cands[r - 1])
    above = [c for c in cands if key(c) > bound]
    eq = [c for c in cands if key(c) == bound]
    rr = r - len(above)
    if len(eq) <= rr:
        return above + eq, None
    if ties == "votes":
        eq.sort(key=lambda l: -votes[l])
        vb = votes[eq[rr - 1]]
        win = [l for l in eq if votes[l] > vb]
        tie = [l for l in eq if votes[l] == vb]
        rr2 = rr - len(win)
        if len(tie) <= rr2:
            return above + win + tie, None
        return above + win, (rr2, sorted(tie))
    return above, (rr, sorted(eq))


def allocate(seats, alloc, votes, blank, taking_part):
    """votes: list id -> votes; taking_part: set of list ids above threshold.
    Returns a Result (without threshold statuses)."""
    res = Result()
    for l in votes:
        res.seats[l] = 0
    part = [l for l in votes if l in taking_part]
    V = sum(votes[l] for l in part)
    if V == 0:
        # Nobody takes part (or no votes at all): lists below the
        # threshold get no seats, so no seat is allocated.
        return res
    method, ties = alloc["method"], alloc["ties"]
    if method in DIVISOR:
        first = alloc["first_divisor"]
        # Enough quotients: each list at most `seats` of them.
        qs = []
        for l in part:
            for k in range(seats):
                qs.append((F(votes[l]) / divisor(method, first, k), l))
        qs.sort(key=lambda t: -t[0])
        bound = qs[seats - 1][0] if len(qs) >= seats else None
        if bound is None or bound == 0:
            raise Undefined("fewer positive quotients than seats")
        above = [l for q, l in qs if q > bound]
        eq = [l for q, l in qs if q == bound]
        for l in above:
            res.seats[l] += 1
        r = seats - len(above)
        # Each list appears at most once among equal quotients.
        eq_sorted = sorted(eq, key=lambda l: -votes[l])
        win, pend = _break(eq_sorted, r, ties, votes, lambda l: 0)
        for l in win:
            res.seats[l] += 1
        if pend:
            res.pending.append(pend)
        return res
    S = F(seats)
    if method == "hare":
        q = F(V) / S
    elif method == "droop":
        q = F(V // (seats + 1) + 1)
    elif method == "hagenbach-bischoff":
        q = F(V) / (S + 1)
    else:
        q = F(-(-V // (seats + 1)))
    whole = {l: int(F(votes[l]) // q) for l in part}
    rem = {l: F(votes[l]) - whole[l] * q for l in part}
    W = sum(whole.values())
    for l in part:
        res.seats[l] = whole[l]
    if W <= seats:
        if seats - W > len(part):
            # More remainder seats than lists: the docs do not say whether
            # the remainders are ranked again.
            raise Undefined("more remainder seats than lists")
        cands = sorted(part, key=lambda l: -rem[l])
        if seats > W and rem[cands[seats - W - 1]] == 0:
            # A remainder seat for a remainder of 0 (Droop, HB-ceil leave
            # seats over): the docs do not say who takes it.
            raise Undefined("a remainder seat at remainder 0")
        win, pend = _break(cands, seats - W, ties, votes, lambda l: rem[l])
        for l in win:
            res.seats[l] += 1
        if pend:
            res.pending.append(pend)
        return res
    # S + 1 whole quotas: the smallest remainders give one back, fewer
    # votes first; equal in both: pending among them.
    res.over = True
    k = W - seats
    cands = sorted([l for l in part if whole[l] > 0],
                   key=lambda l: (rem[l], votes[l]))
    bkey = (rem[cands[k - 1]], votes[cands[k - 1]])
    before = [l for l in cands if (rem[l], votes[l]) < bkey]
    eq = [l for l in cands if (rem[l], votes[l]) == bkey]
    for l in before:
        res.seats[l] -= 1
    j = k - len(before)
    if len(eq) == j:
        for l in eq:
            res.seats[l] -= 1
    else:
        for l in eq:
            res.seats[l] -= 1
        res.pending.append((len(eq) - j, sorted(eq)))
    return res


class Election:
    """A definition as the model reads it (from the same dict we write)."""

    def __init__(self, d):
        self.d = d
        self.alloc = self._alloc(d["allocation"])
        self.coalitions = []
        self.coal_of = {}
        self.cthr = {}
        for c in d["coalitions"]:
            self.coalitions.append(c["id"])
            self.coal_of[c["id"]] = c["id"]
            for a in c.get("aliases", []):
                self.coal_of[a] = c["id"]
            t = c.get("threshold")
            if t is not None:
                self.cthr[c["id"]] = ("exempt" if t.get("exempt")
                                      else F(t["percent"]))
        self.provinces = []
        self.pseats = {}
        self.palloc = {}
        self.plev = {}
        for p in d["provinces"]:
            self.provinces.append(p["id"])
            self.pseats[p["id"]] = p["seats"]
            self.palloc[p["id"]] = (self._alloc(p["allocation"])
                                    if "allocation" in p else self.alloc)
            self.plev[p["id"]] = p.get("levelling_seats", 0)
        self.levelling = "levelling" in d
        self.lev_seats = sum(self.plev.values()) if self.levelling else 0
        self.district_seats = sum(self.pseats.values())
        self.total_seats = self.district_seats + self.lev_seats

    @staticmethod
    def _alloc(a):
        t = a.get("threshold")
        return {"method": a["method"],
                "first_divisor": F(a.get("first_divisor", "1")),
                "threshold": None if t is None else {
                    "percent": F(t["percent"]), "of": t.get("of", "valid"),
                    "scope": t.get("scope", "province")},
                "ties": a.get("ties", "lot")}


class Tally:
    """The state: each province's current feed, its revisions, its lot."""

    def __init__(self, election):
        self.e = election
        self.cur = {}        # province -> feed dict (revision, votes, blank, invalid, status)
        self.hist = {p: [] for p in election.provinces}
        self.lot = {}        # province -> (revision, order)
        # What was applied, in journal order: ("feed", province, feed) and
        # ("lot", province, revision, order); a restart under an edited
        # definition replays it (replay_lots).
        self.log = []
        self.version = 0
        # Declared calls (docs/API.md "Calls"), in order: dicts with the
        # id the daemon gave (certain calls share the numbering, and the
        # model does not derive them), version, retracted_version.
        self.calls = []

    def copy(self):
        t = Tally(self.e)
        t.cur = dict(self.cur)
        t.hist = {p: list(h) for p, h in self.hist.items()}
        t.lot = dict(self.lot)
        t.log = list(self.log)
        t.version = self.version
        t.calls = [dict(c) for c in self.calls]
        return t

    # ---- what the docs say a post does --------------------------------
    def classify(self, province, feed):
        """'applied', 'duplicate', 'conflict', 'stale' (feed already valid)."""
        cur = self.cur.get(province)
        if cur is None or feed["revision"] > cur["revision"]:
            return "applied"
        if feed["revision"] == cur["revision"]:
            return "duplicate" if canon(feed) == canon(cur) else "conflict"
        # A lower revision: stale, unless it repeats an older accepted one
        # (the docs only say "a lower one is 409 stale_revision").
        return "stale"

    def apply(self, province, feed, bump=True):
        self.cur[province] = feed
        self.hist[province].append(feed)
        self.log.append(("feed", province, feed))
        if bump:
            self.version += 1

    def missing_lists(self, province, feed):
        cur = self.cur.get(province)
        if cur is None:
            return []
        # "a list that had votes in the previous revision and is absent"
        return [l for l, v in cur["votes"].items() if v > 0 and l not in feed["votes"]]

    # ---- seats -----------------------------------------------------------
    def national_votes(self):
        """coalition -> national list votes; totals of list and blank."""
        cv = {c: 0 for c in self.e.coalitions}
        lst = blank = 0
        for p, f in self.cur.items():
            for l, v in f["votes"].items():
                cv[self.e.coal_of[l]] += v
                lst += v
            blank += f.get("blank", 0)
        return cv, lst, blank

    def taking_part(self, province, feed):
        """list -> status, and the set of lists that take part."""
        a = self.e.palloc[province]
        t = a["threshold"]
        status, part = {}, set()
        nat = None
        if t is not None and t["scope"] == "national":
            nat = self.national_votes()
        for l, v in feed["votes"].items():
            c = self.e.coal_of[l]
            own = self.e.cthr.get(c)
            if own == "exempt":
                status[l] = "exempt"
                part.add(l)
                continue
            if t is None:
                status[l] = "none"
                part.add(l)
                continue
            pct = own if own is not None else t["percent"]
            if t["scope"] == "province":
                base = sum(feed["votes"].values())
                if t["of"] == "valid":
                    base += feed.get("blank", 0)
                mine = v
            else:
                cv, lst, blank = nat
                base = lst + (blank if t["of"] == "valid" else 0)
                mine = cv[c]
            if mine * 100 >= pct * base:
                status[l] = "passed"
                part.add(l)
            else:
                status[l] = "failed" if t["scope"] == "province" else "excluded"
        return status, part

    def province_result(self, province):
        """Result with the lot in force applied, or None when undefined."""
        f = self.cur.get(province)
        if f is None:
            return None
        status, part = self.taking_part(province, f)
        try:
            res = allocate(self.e.pseats[province], self.e.palloc[province],
                           f["votes"], f.get("blank", 0), part)
        except Undefined:
            return None
        res.status = status
        lot = self.lot.get(province)
        if lot and len(res.pending) == 1:
            seats, tied = res.pending[0]
            if sorted(lot[1]) == tied:
                for l in lot[1][:seats]:
                    res.seats[l] += 1
                res.pending = []
                res.lot_in_force = True
        return res

    def revision_seats(self, province, feed):
        """Firm seats of one past revision, with the national exclusions in
        force now and no lot (history's seats_moved); None if undefined."""
        status, part = self.taking_part(province, feed)
        try:
            res = allocate(self.e.pseats[province], self.e.palloc[province],
                           feed["votes"], feed.get("blank", 0), part)
        except Undefined:
            return None
        return res.seats

    def raw_pending(self, province):
        """The pending tie before any lot: (seats, tied) or None."""
        lot = self.lot.pop(province, None)
        try:
            r = self.province_result(province)
        finally:
            if lot is not None:
                self.lot[province] = lot
        if r is None or len(r.pending) != 1:
            return None
        return r.pending[0]

    def lot_outcome(self, province, revision, order):
        """'applied', 'duplicate' or 'refused' for a lot POST."""
        cur = self.cur.get(province)
        if cur is None or revision != cur["revision"]:
            return "refused"
        lot = self.lot.get(province)
        if lot is not None and lot == (revision, list(order)):
            return "duplicate"
        r = self.province_result(province)
        if lot is not None and r is not None and getattr(r, "lot_in_force", False) \
                and lot[1] == list(order):
            # The order in force again, at a later revision of the same tie.
            return "duplicate"
        if r is None or len(r.pending) != 1:
            return "refused"
        seats, tied = r.pending[0]
        if sorted(order) != tied:
            return "refused"
        return "applied"

    def declare(self, call):
        """A declared call: a record of its own, one version."""
        self.version += 1
        self.calls.append(dict(call, version=self.version, retracted=False,
                               retracted_version=None))

    def standing(self, call):
        """The newest declared call not retracted that call repeats (same
        scope, province, what, coalition and note: a POST answered
        "duplicate", nothing recorded), or None."""
        keys = ("scope", "province", "what", "coalition", "note")
        for c in reversed(self.calls):
            if not c["retracted"] and all(c.get(k) == call.get(k)
                                          for k in keys):
                return c
        return None

    def retract(self, i):
        """Retract declared call i (index in self.calls): one version."""
        self.version += 1
        self.calls[i]["retracted"] = True
        self.calls[i]["retracted_version"] = self.version

    def apply_lot(self, province, revision, order):
        self.lot[province] = (revision, list(order))
        self.log.append(("lot", province, revision, list(order)))
        self.version += 1

    def replay_lots(self, log):
        """The lots in force after a restart that rebuilds the tally from
        the journal under this (edited) definition (docs/ELECTION.md): each
        lot is checked against the state at its place in the journal, as
        when it was posted; one that does not settle a tie standing there
        now (gone, another tie, or the order in force already) is kept
        without effect -- never in force later, even when a later revision
        ties the same lists again ("a tie the new definition makes needs a
        lot of its own"). The province keeps its last lot that did settle
        one."""
        cur, lot = {}, {}
        saved, self.cur, self.lot = self.cur, cur, lot
        try:
            for e in log:
                if e[0] == "feed":
                    cur[e[1]] = e[2]
                elif self.lot_outcome(e[1], e[2], e[3]) == "applied":
                    lot[e[1]] = (e[2], list(e[3]))
        finally:
            self.cur = saved
        self.lot = lot

    def national(self):
        """coalition -> (votes, district seats, tied_for); pending; None if
        some reporting province is undefined."""
        votes, lst, blank = self.national_votes()
        seats = {c: 0 for c in self.e.coalitions}
        tied = {c: 0 for c in self.e.coalitions}
        pending = 0
        allocated = 0
        for p in self.e.provinces:
            if p not in self.cur:
                continue
            r = self.province_result(p)
            if r is None:
                return None
            for l, s in r.seats.items():
                seats[self.e.coal_of[l]] += s
                allocated += s
            for s, t in r.pending:
                pending += s
                for c in {self.e.coal_of[l] for l in t}:
                    tied[c] += s
        return {"votes": votes, "seats": seats, "tied_for": tied,
                "pending": pending, "allocated": allocated,
                "valid": lst, "blank": blank}

    def key(self):
        """The tally's content, for same-state comparisons."""
        out = []
        for p in self.e.provinces:
            f = self.cur.get(p)
            lot = self.lot.get(p)
            r = self.province_result(p) if f else None
            inforce = tuple(lot[1]) if (lot and r is not None and
                                        getattr(r, "lot_in_force", False)) else None
            out.append((p, canon(f) if f else None, inforce))
        return repr(out)


def canon(f):
    """What duplicate detection compares (the revision's content)."""
    return (f["revision"], tuple(sorted(f["votes"].items())), f.get("blank", 0),
            f.get("invalid", 0), f.get("status", "partial"))


def ranking(nat):
    """Coalition ids in rank order: seats desc, votes desc, id asc."""
    return sorted(nat["votes"], key=lambda c: (-nat["seats"][c],
                                               -nat["votes"][c], c))
