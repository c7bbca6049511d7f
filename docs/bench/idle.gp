if (strstrt(GPVAL_TERMINALS, 'pngcairo') > 0) {
    set terminal pngcairo size 900,560
} else {
    set terminal png size 900,560
}
set output 'docs/bench/idle.png'
set title 'idle-fd round trip (us, median, bars min-max)'
set xlabel 'idle fds registered (N)'
set ylabel 'round trip (us)'
set logscale x
set logscale y
set grid
set key top left
set offsets graph 0.03, graph 0.03, graph 0.05, graph 0.05
plot 'docs/bench/idle.dat' index 0 using 1:2:3:4 with yerrorlines lw 2 title 'select', \
     'docs/bench/idle.dat' index 1 using 1:2:3:4 with yerrorlines lw 2 title 'poll', \
     'docs/bench/idle.dat' index 2 using 1:2:3:4 with yerrorlines lw 2 title 'epoll', \
     'docs/bench/idle.dat' index 3 using 1:2:3:4 with yerrorlines lw 2 title 'uring'
