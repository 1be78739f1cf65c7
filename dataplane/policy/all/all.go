// Package all links every policy into the binary: importing a policy
// package registers it. Adding a policy is adding its package and one line
// here.
package all

import (
	_ "github.com/tollgate/tollgate/dataplane/policy" // the engine; policies follow
)
