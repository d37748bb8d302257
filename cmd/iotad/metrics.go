package main

import (
	"fmt"

	"github.com/iotad/iotad/api"
	"github.com/iotad/iotad/community/voice"
)

// registerMetrics puts what api.New cannot see (the embedded TURN server,
// which only serve knows of) on the admin listener's /metrics.
func registerMetrics(srv *api.Server, turnSrv *voice.TURN) error {
	if turnSrv == nil {
		return nil
	}
	if err := srv.RegisterMetrics(turnSrv.Collectors()...); err != nil {
		return fmt.Errorf("metrics: %w", err)
	}
	return nil
}
