module github.com/propalpes/companias/libs/jwtauth

go 1.26.0

require (
	github.com/MicahParks/jwkset v0.11.5
	github.com/golang-jwt/jwt/v5 v5.3.1
	github.com/propalpes/companias/libs/seedwork v0.0.0
)

require golang.org/x/time v0.9.0 // indirect

replace github.com/propalpes/companias/libs/seedwork => ../seedwork
