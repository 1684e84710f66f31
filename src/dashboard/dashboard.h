/* dashboard.h — the dashboard page (src/dashboard/index.html) embedded in
 * the binary.  The definitions are generated at build time by embed.sh into
 * the build tree (src/dashboard/index_html.c); the page is one
 * self-contained HTML file that reads the API with relative URLs (../api/),
 * served at /dashboard/ as text/html; charset=utf-8. */
#ifndef RELAIS_DASHBOARD_H
#define RELAIS_DASHBOARD_H

#include <stddef.h>

/* The bytes of index.html, followed by one NUL that is not part of the page. */
extern const unsigned char dash_index_html[];
/* The size of the page in bytes (the trailing NUL not counted). */
extern const size_t dash_index_html_len;

#endif
