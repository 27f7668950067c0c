# want: 2:13 is not an absolute path
state_dir = "var/lib"
door "k" {
  sequence = ["7000", "8000", "9000"]
  open = ["22"]
}
