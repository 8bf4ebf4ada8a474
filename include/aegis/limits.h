/* Every maximum that a peer (client, upstream, control plane, file) can push against, in one place. */
#ifndef AEGIS_LIMITS_H
#define AEGIS_LIMITS_H

/* DNS */
#define AEGIS_DNS_MAX_NAME           255 /* wire-format name, RFC 1035 */
#define AEGIS_DNS_NAME_BUF           256 /* buffer for one wire name */
#define AEGIS_DNS_MAX_LABELS         128
#define AEGIS_DNS_UDP_MIN            512  /* answer size without EDNS */
#define AEGIS_DNS_EDNS_MAX           4096 /* largest EDNS UDP size we honour from a client */
#define AEGIS_DNS_EDNS_ADVERTISE     1232 /* what we advertise (DNS flag day 2020) */
#define AEGIS_DNS_TCP_MAX            65535
#define AEGIS_DNS_MAX_RRS_PER_ANSWER 512  /* records written into one answer before TC */
#define AEGIS_DNS_MAX_ADDRS_PER_NAME 4096 /* addresses kept per table name */
#define AEGIS_DNS_TCP_MAX_CONNS      1024
#define AEGIS_DNS_TCP_IDLE_MS        10000
#define AEGIS_DNS_TCP_MAX_PIPELINE   64 /* queries answered per connection per read burst */
#define AEGIS_DNS_UDP_BATCH          32 /* recvmmsg/sendmmsg vector */

/* Configuration sources */
#define AEGIS_CONFIG_MAX_FILE_BYTES (64u << 20) /* one YAML file */
#define AEGIS_CONFIG_MAX_DEPTH      64          /* YAML nesting */
#define AEGIS_CONFIG_MAX_FILES      100000
#define AEGIS_CONFIG_MAX_BYTES      (1024u << 20) /* arena cap for one whole config */
#define AEGIS_CONFIG_MAX_SEARCH     32            /* search suffixes taken from resolv.conf */

/* xDS */
#define AEGIS_XDS_MAX_MESSAGE (64u << 20)

#endif
