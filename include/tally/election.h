/*
 * election.h - the election definition: provinces, coalitions, the rule.
 *
 * A definition is loaded from JSON (config/elections/ *.json, format in
 * docs/ELECTION.md), validated as a whole, and then read-only for the life of
 * the process.  Every string is owned by the election.
 */
#ifndef TALLY_ELECTION_H
#define TALLY_ELECTION_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <tally/diag.h>
#include <tally/frac.h>
#include <tally/palette.h>

struct json_t;

#define TALLY_ID_MAX		64	/* bytes in a province, coalition or list id */
#define TALLY_SEATS_MAX		10000	/* seats in one province */
#define TALLY_COUNT_MAX		1000000000000ULL	/* registered, ballots per station */

enum tally_method {
	TALLY_METHOD_DHONDT,		/* divisors 1, 2, 3, ... */
	TALLY_METHOD_SAINTE_LAGUE,	/* divisors 1, 3, 5, ...; first may differ */
	TALLY_METHOD_HARE,		/* largest remainder, quota V/S */
	TALLY_METHOD_DROOP,		/* largest remainder, quota floor(V/(S+1))+1 */
	TALLY_METHOD_HAGENBACH_BISCHOFF,	/* largest remainder, quota V/(S+1) exactly */
	TALLY_METHOD_HAGENBACH_BISCHOFF_CEIL,	/* largest remainder, quota ceil(V/(S+1)) */
};

/* Largest-remainder (quota) methods, as opposed to divisor methods. */
#define TALLY_METHOD_IS_QUOTA(m)	((m) != TALLY_METHOD_DHONDT && \
					 (m) != TALLY_METHOD_SAINTE_LAGUE)

enum tally_threshold_of {
	TALLY_THRESHOLD_NONE,		/* no threshold */
	TALLY_THRESHOLD_VALID,		/* percent of list votes + blank */
	TALLY_THRESHOLD_LIST,		/* percent of list votes */
};

enum tally_scope {
	TALLY_SCOPE_PROVINCE,
	TALLY_SCOPE_NATIONAL,
};

enum tally_ties {
	TALLY_TIES_VOTES,		/* more votes wins; still equal: lot */
	TALLY_TIES_LOT,
};

/* How one province's seats are allocated. */
struct tally_rule {
	enum tally_method	 method;
	struct tally_frac	 first_divisor;	/* divisor methods; 1 by default */
	enum tally_threshold_of	 threshold_of;
	struct tally_frac	 threshold_percent;
	enum tally_scope	 threshold_scope;
	enum tally_ties		 ties;
};

/*
 * A coalition's own threshold: it replaces the percent of the threshold in
 * force (same base and scope), or exempts the coalition from every
 * threshold (Kodeks wyborczy art. 197 par. 2: registered national
 * minorities).
 */
struct tally_list_threshold {
	bool			 set;		/* the coalition gives one */
	bool			 exempt;
	struct tally_frac	 percent;	/* when set and not exempt */
	char			*reason;	/* shown in views, or NULL */
};

/*
 * A name in another language than the definition's own: "names":
 * {"ar": "..."} on a coalition or a province.  `lang` is a BCP 47 tag
 * (a primary language subtag and optional subtags: "ar", "ku-Arab").
 */
struct tally_name {
	char		*lang;
	char		*text;
};

struct tally_coalition {
	char		*id;
	char		*name;
	char		*short_name;
	char		*color;		/* "#rrggbb" or NULL */
	struct tally_color shown;	/* what every view draws (tally/palette.h) */
	char	       **aliases;	/* other list ids it runs under */
	size_t		 n_aliases;
	size_t		 index;		/* position in election->coalitions */
	struct tally_list_threshold threshold;
	struct tally_name *names;	/* other languages, in file order */
	size_t		 n_names;
	/* Its lists in the previous election (coalition ids of that
	 * definition): the lineage comparisons follow (docs/NEWSROOM.md). */
	char	       **predecessors;
	size_t		 n_predecessors;
};

struct tally_province {
	char		*id;
	char		*name;
	uint32_t	 seats;
	struct tally_rule rule;		/* effective: own override or the election's */
	bool		 own_rule;	/* rule came from the province itself */
	size_t		 index;
	/* Bounds on the ballots still uncounted (optional; see tally/bounds.h). */
	bool		 has_registered;
	uint64_t	 registered;	/* the electorate: registered voters */
	uint64_t	 station_ballots_max;	/* per station not reporting; 0 none */
	uint32_t	 levelling_seats;	/* seats of the levelling tier assigned here */
	struct tally_name *names;	/* other languages, in file order */
	size_t		 n_names;
	/* Ballots expected in all (an estimate, never used in a decision). */
	bool		 has_expected;
	uint64_t	 expected_ballots;
	/* Its cell in the tile map (/v1/map.svg), when the definition gives one. */
	bool		 has_tile;
	uint32_t	 tile_x;
	uint32_t	 tile_y;
};

/* How levelling seats are assigned to provinces (Valgloven s. 11-8). */
enum tally_levelling_scale {
	TALLY_SCALE_NONE,		/* quotients compared as they are */
	TALLY_SCALE_VOTES_PER_SEAT,	/* divided by the province's votes per district seat */
};

/*
 * A compensatory (levelling) tier: `seats` more seats, the sum of the
 * provinces' levelling_seats.  The whole parliament (district + levelling
 * seats) is apportioned nationally by `national` among the coalitions at or
 * above its threshold; a coalition with more district seats than its
 * national share is set aside with its seats and the apportionment repeated
 * until none is; each remaining coalition's levelling seats are its share
 * less its district seats, and they go to provinces by `assign`: every
 * (province, coalition) quotient votes / d(district seats there), scaled,
 * highest first, one coalition's seats until it has them all, a province's
 * until it has them all.
 */
struct tally_levelling {
	bool			 enabled;
	uint32_t		 seats;
	struct tally_rule	 national;	/* divisor method, national threshold */
	struct tally_rule	 assign;	/* divisor method of the assignment */
	enum tally_levelling_scale scale;
};

struct tally_lb_pieces;

struct tally_election {
	char			*id;
	char			*name;
	struct tally_rule	 rule;		/* election-wide rule */
	struct tally_coalition	*coalitions;
	size_t			 n_coalitions;
	struct tally_province	*provinces;
	size_t			 n_provinces;
	uint64_t		 seats_total;
	bool			 has_national_threshold;
	bool			 has_list_thresholds;	/* a coalition has its own */
	bool			 has_expected;	/* a province has expected_ballots */
	uint64_t		 district_seats;	/* seats_total less levelling */
	struct tally_levelling	 levelling;
	uint64_t		 station_ballots_max;	/* default for provinces; 0 none */
	struct tally_name	*names;		/* the election's name in other languages */
	size_t			 n_names;
	/* The previous election to compare with ("previous"): its definition
	 * and its official results (a POST /v1/results batch body), as given
	 * and resolved against the definition's directory; NULL: none. */
	char			*previous_definition;
	char			*previous_results;
	char			*previous_definition_path;
	char			*previous_results_path;
	/* FNV-1a 64 of both files' bytes, read when the definition was: in
	 * the dump, so a view's validators move when they change. */
	uint64_t		 previous_digest;
	struct json_t		*index;		/* private: id -> position maps */
	/* private: the leaderboard's constant pieces (lib/jsontext.c), made
	 * by the loader; NULL in a definition built by hand. */
	struct tally_lb_pieces	*lb_pieces;
};

/*
 * Load and validate a definition.  `name` is used in messages (usually the
 * file path).  Returns a new election (free with tally_election_destroy), or
 * NULL with every problem found appended to `diag` as
 * "name: /json/pointer: problem".
 */
struct tally_election	*tally_election_load(const char *path,
			    struct tally_diag *diag);
struct tally_election	*tally_election_loadb(const char *buf, size_t len,
			    const char *name, struct tally_diag *diag);
void			 tally_election_destroy(struct tally_election *e);

/* Lookups; borrowed results, NULL when unknown. */
const struct tally_province	*tally_election_province(
				    const struct tally_election *e, const char *id);
const struct tally_coalition	*tally_election_coalition(
				    const struct tally_election *e, const char *id);
/* A list id as posted in a feed: a coalition id or one of its aliases. */
const struct tally_coalition	*tally_election_list(
				    const struct tally_election *e, const char *list_id);

/* The election's own copy of a list id (coalition id or alias), or NULL. */
const char			*tally_election_list_id(
				    const struct tally_election *e, const char *list_id);

/* The normalised definition as JSON (new reference). NULL on allocation failure. */
struct json_t	*tally_election_dump(const struct tally_election *e);

/* Stable names used in JSON: "dhondt", "valid", "province", "votes", ... */
const char	*tally_method_name(enum tally_method m);
const char	*tally_threshold_of_name(enum tally_threshold_of t);
const char	*tally_scope_name(enum tally_scope s);
const char	*tally_ties_name(enum tally_ties t);
const char	*tally_scale_name(enum tally_levelling_scale s);

/* Id syntax shared by provinces, coalitions and lists: [A-Za-z0-9_.-]{1,64}. */
bool		 tally_id_is_valid(const char *id);

#endif
