package daemon

import (
	"github.com/sesame-knock/sesame/knock"
	"github.com/sesame-knock/sesame/logevent"
)

// decisionEvent is the log event of a matcher decision. Every log line's
// message is a logevent constant (docs/design.md, "Logs").
func decisionEvent(k knock.Kind) string {
	switch k {
	case knock.Stage:
		return logevent.Stage
	case knock.Open:
		return logevent.Open
	case knock.Close:
		return logevent.Close
	case knock.Reset:
		return logevent.Reset
	case knock.Timeout:
		return logevent.Timeout
	}
	return k.String()
}
