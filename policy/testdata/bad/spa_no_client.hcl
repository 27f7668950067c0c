# want: 3:3 has an spa block but no client
door "s" {
  spa {}
  open = ["22"]
}
