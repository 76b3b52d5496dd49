package consumer

import (
	"context"
	"testing"

	"github.com/propalpes/companias/services/query/internal/view"
)

func TestPartitionReaderBoundsFetches(t *testing.T) {
	t.Parallel()
	w := WriterFunc(func(context.Context, []view.Run) ([]view.VersionGap, error) { return nil, nil })
	for _, tt := range []struct{ set, want int }{{0, DefaultMaxFetchBytes}, {-5, DefaultMaxFetchBytes}, {4096, 4096}} {
		c, err := New(Config{Brokers: []string{"127.0.0.1:1"}, GroupID: "g", MaxFetchBytes: tt.set}, w)
		if err != nil {
			t.Fatal(err)
		}
		r := c.partitionReader(3)
		cfg := r.Config()
		if err := r.Close(); err != nil {
			t.Errorf("close: %v", err)
		}
		if cfg.MinBytes != 1 || cfg.MaxBytes != tt.want || cfg.Partition != 3 {
			t.Errorf("MaxFetchBytes %d: reader MinBytes %d, MaxBytes %d, partition %d; want 1, %d, 3",
				tt.set, cfg.MinBytes, cfg.MaxBytes, cfg.Partition, tt.want)
		}
	}
}
