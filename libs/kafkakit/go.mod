module github.com/propalpes/companias/libs/kafkakit

go 1.26.0

require (
	github.com/propalpes/companias/libs/seedwork v0.0.0
	github.com/segmentio/kafka-go v0.4.51
)

replace github.com/propalpes/companias/libs/seedwork => ../seedwork

require (
	github.com/klauspost/compress v1.20.3 // indirect
	github.com/pierrec/lz4/v4 v4.1.33 // indirect
	github.com/xdg-go/scram v1.4.0 // indirect
	github.com/xdg-go/stringprep v1.0.4 // indirect
	golang.org/x/text v0.41.0 // indirect
)
