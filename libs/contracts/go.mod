module github.com/propalpes/companias/libs/contracts

go 1.26.0
