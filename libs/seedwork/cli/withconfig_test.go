package cli_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
	"testing"

	"github.com/propalpes/companias/libs/seedwork/cli"
)

func TestWithConfig(t *testing.T) {
	t.Parallel()
	loads := 0
	load := func() (string, error) { loads++; return "cfg", nil }
	logger := func(w io.Writer, cfg string) *slog.Logger {
		return slog.New(slog.NewTextHandler(w, nil)).With("cfg", cfg)
	}
	var got string
	f := cli.WithConfig("serve", load, logger, func(_ context.Context, cfg string, log *slog.Logger, _ io.Writer) error {
		got = cfg
		log.Info("ran")
		return nil
	})
	var stderr bytes.Buffer
	if err := f(context.Background(), nil, io.Discard, &stderr); err != nil || got != "cfg" || !bytes.Contains(stderr.Bytes(), []byte("cfg=cfg")) {
		t.Errorf("run = %v, cfg %q, log %q", err, got, stderr.String())
	}
	if err := f(context.Background(), []string{"x"}, io.Discard, io.Discard); !errors.Is(err, cli.ErrUsage) || loads != 1 {
		t.Errorf("with an argument = %v (loads %d), want a usage error before loading", err, loads)
	}
	bad := cli.WithConfig("serve", func() (string, error) { return "", errors.New("invalid configuration: X") }, logger,
		func(context.Context, string, *slog.Logger, io.Writer) error {
			t.Error("ran on a bad configuration")
			return nil
		})
	if err := bad(context.Background(), nil, io.Discard, io.Discard); err == nil || err.Error() != "invalid configuration: X" {
		t.Errorf("bad configuration = %v", err)
	}
}
