//go:build !linux

package sysmon

import (
	"context"
	"log/slog"
)

// Watch does nothing here: the policy it sets is Linux's.
func Watch(ctx context.Context, logger *slog.Logger) {}
