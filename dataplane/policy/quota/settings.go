package quota

import (
	"fmt"

	"github.com/tollgate/tollgate/config"
)

// Settings are the policy's settings; the quota itself is the consumer's
// plan's.
type Settings struct {
	// Per names whose requests are counted; only consumer for now.
	Per string `yaml:"per"`
}

// Validate reports every setting the policy cannot work with.
func (s *Settings) Validate() []config.FieldError {
	switch s.Per {
	case "", "consumer":
		return nil
	}
	return []config.FieldError{{Path: "per", Msg: fmt.Sprintf("per %q is not consumer (the only kind of quota so far)", s.Per)}}
}
