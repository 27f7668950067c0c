# want: 5:3 max_open_for without an spa block
door "k" {
  sequence = ["7000", "8000", "9000"]
  open = ["22"]
  max_open_for = "5m"
}
