// Package logging builds the agent's one zap logger from its configuration:
// JSON by default, human-readable console output on a terminal.
package logging

import (
	"fmt"
	"io"
	"os"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
)

// Config is the logging configuration, read from SOAK_* variables.
type Config struct {
	Level  string `envconfig:"LOG_LEVEL" default:"info" desc:"Log level: debug, info, warn or error."`
	Format string `envconfig:"LOG_FORMAT" default:"auto" desc:"Log format: json, console, or auto (console on a terminal, JSON otherwise)."`
}

// Validate checks the configuration; errors name the variable.
func (c Config) Validate() error {
	if _, err := zapcore.ParseLevel(c.Level); err != nil {
		return fmt.Errorf("SOAK_LOG_LEVEL: want debug, info, warn or error, got %q", c.Level)
	}
	switch c.Format {
	case "auto", "json", "console":
	default:
		return fmt.Errorf("SOAK_LOG_FORMAT: want auto, json or console, got %q", c.Format)
	}
	return nil
}

// New returns a logger writing to w. With format auto, a terminal (a
// character device) gets console output.
func New(c Config, w io.Writer) (*zap.Logger, error) {
	if err := c.Validate(); err != nil {
		return nil, err
	}
	level, _ := zapcore.ParseLevel(c.Level)
	format := c.Format
	if format == "auto" {
		format = "json"
		if f, ok := w.(*os.File); ok {
			if st, err := f.Stat(); err == nil && st.Mode()&os.ModeCharDevice != 0 {
				format = "console"
			}
		}
	}
	encCfg := zap.NewProductionEncoderConfig()
	encCfg.EncodeTime = zapcore.ISO8601TimeEncoder
	encCfg.EncodeDuration = zapcore.StringDurationEncoder // "1h0m0s" reads at a glance; seconds do not
	var enc zapcore.Encoder
	if format == "console" {
		encCfg.EncodeLevel = zapcore.CapitalColorLevelEncoder
		enc = zapcore.NewConsoleEncoder(encCfg)
	} else {
		enc = zapcore.NewJSONEncoder(encCfg)
	}
	core := zapcore.NewCore(enc, zapcore.Lock(zapcore.AddSync(w)), level)
	return zap.New(core, zap.ErrorOutput(zapcore.Lock(zapcore.AddSync(w)))), nil
}
