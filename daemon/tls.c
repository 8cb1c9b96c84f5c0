/*
 * tls.c - a listener's TLS credentials, loaded at start and on SIGHUP.
 *
 * libmicrohttpd 0.9.75 has no call to replace a certificate on a running
 * daemon, so the listeners take theirs from a GnuTLS certificate callback
 * (MHD_OPTION_HTTPS_CERT_CALLBACK, in server.c) that presents the newest
 * credentials here.  A reload makes new ones; the older ones are kept
 * until the server is destroyed, since a handshake begun before the reload
 * may still use them (a few KiB each, and reloads are rare).
 */
#include <stdlib.h>

#include <tally/tally.h>

#include "log.h"
#include "tls.h"

#define TLS_CHAIN_MAX	8

struct tls_cred {
	struct tls_cred		*older;		/* [L] replaced by this one */
	gnutls_pcert_st		 chain[TLS_CHAIN_MAX];	/* [I] */
	unsigned		 n;		/* [I] */
	gnutls_privkey_t	 key;		/* [I] */
};

void
tls_cred_free(struct tls_cred *tc)
{
	while (tc != NULL) {
		struct tls_cred *older = tc->older;
		unsigned i;
		for (i = 0; i < tc->n; i++)
			gnutls_pcert_deinit(&tc->chain[i]);
		if (tc->key != NULL)
			gnutls_privkey_deinit(tc->key);
		free(tc);
		tc = older;
	}
}

struct tls_cred *
tls_cred_load(const char *cert, const char *key, struct tally_diag *diag)
{
	gnutls_datum_t c = { NULL, 0 }, k = { NULL, 0 };
	struct tls_cred *tc;
	int rc;

	if ((tc = calloc(1, sizeof(*tc))) == NULL) {
		tally_diag_add(diag, "out of memory");
		return NULL;
	}
	if ((rc = gnutls_load_file(cert, &c)) < 0) {
		tally_diag_add(diag, "tls certificate %s: %s", cert,
		    gnutls_strerror(rc));
		goto fail;
	}
	if ((rc = gnutls_load_file(key, &k)) < 0) {
		tally_diag_add(diag, "tls key %s: %s", key,
		    gnutls_strerror(rc));
		goto fail;
	}
	tc->n = TLS_CHAIN_MAX;
	if ((rc = gnutls_pcert_list_import_x509_raw(tc->chain, &tc->n, &c,
	    GNUTLS_X509_FMT_PEM, 0)) < 0) {
		tc->n = 0;
		tally_diag_add(diag, "tls certificate %s: %s", cert,
		    gnutls_strerror(rc));
		goto fail;
	}
	if ((rc = gnutls_privkey_init(&tc->key)) < 0 ||
	    (rc = gnutls_privkey_import_x509_raw(tc->key, &k,
	    GNUTLS_X509_FMT_PEM, NULL, 0)) < 0) {
		tally_diag_add(diag, "tls key %s: %s", key,
		    gnutls_strerror(rc));
		goto fail;
	}
	gnutls_free(c.data);
	gnutls_memset(k.data, 0, k.size);
	gnutls_free(k.data);
	return tc;
fail:
	gnutls_free(c.data);
	if (k.data != NULL)
		gnutls_memset(k.data, 0, k.size);
	gnutls_free(k.data);
	tls_cred_free(tc);
	return NULL;
}

int
tls_cred_select(struct tls_cred *tc, gnutls_pcert_st **chain,
    unsigned int *n, gnutls_privkey_t *key)
{
	if (tc == NULL)
		return -1;
	*chain = tc->chain;
	*n = tc->n;
	*key = tc->key;
	return 0;
}

/* Reloading for at most this many listeners (server.c has two). */
#define TLS_LISTENERS_MAX	2

int
tls_reload(const struct tls_listener *ls, size_t n, struct tally_diag *diag)
{
	struct tls_cred *fresh[TLS_LISTENERS_MAX] = { NULL, NULL };
	size_t i, problems = diag->count;

	for (i = 0; i < n && i < TLS_LISTENERS_MAX; i++) {
		const struct tls_listener *l = &ls[i];
		if (*l->cred == NULL) {
			if (l->cert != NULL)
				tally_diag_add(diag, "%s: TLS can only be turned "
				    "on at a restart", l->addr);
			continue;
		}
		if (l->cert == NULL || l->key == NULL) {
			tally_diag_add(diag, "%s: TLS can only be turned off at "
			    "a restart", l->addr);
			continue;
		}
		if ((fresh[i] = tls_cred_load(l->cert, l->key, diag)) == NULL)
			break;
	}
	if (diag->count > problems) {
		for (i = 0; i < TLS_LISTENERS_MAX; i++)
			tls_cred_free(fresh[i]);
		return -1;
	}
	for (i = 0; i < TLS_LISTENERS_MAX; i++) {
		if (fresh[i] == NULL)
			continue;
		fresh[i]->older = *ls[i].cred;
		*ls[i].cred = fresh[i];
		log_info("%s: TLS certificate reloaded", ls[i].addr);
	}
	return 0;
}
