if (strstrt(GPVAL_TERMINALS, 'pngcairo') > 0) {
    set terminal pngcairo size 900,560
} else {
    set terminal png size 900,560
}
set output 'docs/bench/file.png'
set title 'file, O_DIRECT: random 4 KiB reads (IOPS, median, bars min-max)'
set xlabel 'queue depth (random 4 KiB reads)'
set ylabel 'IOPS'
set logscale x
set grid
set key top left
set offsets graph 0.03, graph 0.03, graph 0.05, graph 0.05
plot 'docs/bench/file.dat' index 0 using 1:2:3:4 with yerrorlines lw 2 title 'gyre-uring', \
     'docs/bench/file.dat' index 1 using 1:2:3:4 with yerrorlines lw 2 title 'gyre-pool', \
     'docs/bench/file.dat' index 2 using 1:2:3:4 with yerrorlines lw 2 title 'gyre-linuxaio', \
     'docs/bench/file.dat' index 3 using 1:2:3:4 with yerrorlines lw 2 title 'gyre-posixaio', \
     'docs/bench/file.dat' index 4 using 1:2:3:4 with yerrorlines lw 2 title 'fio-io_uring', \
     'docs/bench/file.dat' index 5 using 1:2:3:4 with yerrorlines lw 2 title 'fio-libaio', \
     'docs/bench/file.dat' index 6 using 1:2:3:4 with yerrorlines lw 2 title 'fio-posixaio', \
     'docs/bench/file.dat' index 7 using 1:2:3:4 with yerrorlines lw 2 title 'fio-psync', \
     'docs/bench/file.dat' index 8 using 1:2:3:4 with yerrorlines lw 2 title 'fio-psync-4j', \
     'docs/bench/file.dat' index 9 using 1:2:3:4 with yerrorlines lw 2 title 'libuv'
