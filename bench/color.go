package bench

import "image/color"

func rgb(i int) color.Color {
	s := lineStyles[i%len(lineStyles)]
	return color.RGBA{R: s.r, G: s.g, B: s.b, A: 0xff}
}
