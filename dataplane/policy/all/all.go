// Package all links every policy into the binary: importing a policy
// package registers it. Adding a policy is adding its package and one line
// here.
package all

import (
	_ "github.com/tollgate/tollgate/dataplane/policy/acl"
	_ "github.com/tollgate/tollgate/dataplane/policy/basicauth"
	_ "github.com/tollgate/tollgate/dataplane/policy/cache"
	_ "github.com/tollgate/tollgate/dataplane/policy/cors"
	_ "github.com/tollgate/tollgate/dataplane/policy/deprecation"
	_ "github.com/tollgate/tollgate/dataplane/policy/introspection"
	_ "github.com/tollgate/tollgate/dataplane/policy/iprestriction"
	_ "github.com/tollgate/tollgate/dataplane/policy/jwtauth"
	_ "github.com/tollgate/tollgate/dataplane/policy/keyauth"
	_ "github.com/tollgate/tollgate/dataplane/policy/loadshed"
	_ "github.com/tollgate/tollgate/dataplane/policy/mtlsauth"
	_ "github.com/tollgate/tollgate/dataplane/policy/quota"
	_ "github.com/tollgate/tollgate/dataplane/policy/ratelimit"
	_ "github.com/tollgate/tollgate/dataplane/policy/requestvalidation"
	_ "github.com/tollgate/tollgate/dataplane/policy/sizelimit"
	_ "github.com/tollgate/tollgate/dataplane/policy/threatprotection"
	_ "github.com/tollgate/tollgate/dataplane/policy/transform"
	_ "github.com/tollgate/tollgate/dataplane/policy/xmladapter"
)
