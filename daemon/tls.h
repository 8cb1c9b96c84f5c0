/*
 * tls.h - a listener's TLS credentials: the certificate chain and key read
 * from PEM files, read again on SIGHUP.  No libmicrohttpd here: server.c
 * hands GnuTLS's certificate callback the newest credentials of the
 * listener a handshake arrived on (tls_cred_select).
 *
 * Threads: the loop thread only [L] (GnuTLS runs the handshakes inside
 * libmicrohttpd's calls, on the loop).
 */
#ifndef TALLYD_TLS_H
#define TALLYD_TLS_H

#include <stdbool.h>
#include <stddef.h>

#include <gnutls/gnutls.h>
#include <gnutls/abstract.h>

struct tally_diag;

/*
 * TLS 1.2 and 1.3 only, GnuTLS's usual ciphers.  The certificate comes from
 * the certificate callback, so that a reload can replace it on the running
 * listener.
 */
#define TLS_PRIORITIES	"NORMAL:-VERS-ALL:+VERS-TLS1.3:+VERS-TLS1.2"

/*
 * A chain and key, with the ones it replaced (kept until tls_cred_free,
 * since a handshake begun before a reload may still use them).
 */
struct tls_cred;

/* Certificate chain and key from PEM files (new), or NULL with diag. */
struct tls_cred	*tls_cred_load(const char *cert, const char *key,
		    struct tally_diag *diag);
/* Free tc and every older one; NULL is a no-op. */
void		 tls_cred_free(struct tls_cred *tc);
/* What GnuTLS's certificate callback answers: tc's chain and key
 * (borrowed).  0, or -1 when tc is NULL. */
int		 tls_cred_select(struct tls_cred *tc,
		    gnutls_pcert_st **chain, unsigned int *n,
		    gnutls_privkey_t *key);

/* One listener as a reload sees it. */
struct tls_listener {
	const char	*addr;		/* for messages */
	struct tls_cred	**cred;		/* its credentials; NULL: plain */
	const char	*cert, *key;	/* the files the new settings name */
};

/*
 * SIGHUP: read the certificates and keys of every listener again, all or
 * none; new handshakes use them, older ones are kept.  -1 with diag (the
 * ones in force stay) if one cannot be read, or if TLS would be turned on
 * or off (that takes a restart).
 */
int		 tls_reload(const struct tls_listener *ls, size_t n,
		    struct tally_diag *diag);

#endif
