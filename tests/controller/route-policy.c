/* SPDX-License-Identifier: MIT */
/*
 * route-policy: prints the controller's route table (api.h's GV_CONTROLLER_API_ROUTES, the
 * table api.c serves) as one JSON object per line — {"method", "pattern", "role", "members"} —
 * so that test-authz-cluster.sh can run every route as every role from the table itself: a
 * route added later is in the matrix without anyone remembering to add it.
 */
#include <stdio.h>

#include "controller/api.h"

enum { NONE = -1, VIEWER = GV_ROLE_VIEWER, OPERATOR = GV_ROLE_OPERATOR, ADMIN = GV_ROLE_ADMIN };
enum { M_NO, M_OWN, M_ALL };
enum { Q_NONE, Q_WAIT, Q_LIMIT, Q_AFTER, Q_UPLOAD, Q_METRICS, Q_INSIGHTS, Q_AUDIT };

static const char *role_name(int r)
{
        return r == NONE ? "none" : gv_role_to_string((enum gv_role)r);
}

int main(void)
{
        static const char *const members[] = { "no", "own", "all" };
#define ROW(method, pattern, name, role, query, m)                                             \
        printf("{\"method\": \"%s\", \"pattern\": \"%s\", \"role\": \"%s\", "                  \
               "\"members\": \"%s\", \"upload\": %s}\n",                                       \
               method, pattern, role_name(role), members[m],                                   \
               (query) == Q_UPLOAD ? "true" : "false");
        GV_CONTROLLER_API_ROUTES(ROW)
#undef ROW
        return 0;
}
