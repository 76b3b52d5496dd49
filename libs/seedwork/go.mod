module github.com/propalpes/companias/libs/seedwork

go 1.26.0
