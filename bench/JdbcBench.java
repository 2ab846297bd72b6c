// The bench's JDBC-style workload: THREADS connections, each prepares one statement
// (prepareThreshold=1: a named server statement from the first execution) and then executes it
// over and over with a random key, as an application server does, for SECONDS seconds.
// Prints "transactions=N seconds=S" (one execution in autocommit = one transaction).
//
//   java -cp /usr/share/java/postgresql.jar JdbcBench.java URL USER PASSWORD SSLMODE THREADS SECONDS ROWS
import java.sql.Connection;
import java.sql.DriverManager;
import java.sql.PreparedStatement;
import java.sql.ResultSet;
import java.util.ArrayList;
import java.util.List;
import java.util.Properties;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.ThreadLocalRandom;
import java.util.concurrent.atomic.AtomicLong;

public class JdbcBench {
  public static void main(String[] args) throws Exception {
    String url = args[0];
    Properties p = new Properties();
    p.setProperty("user", args[1]);
    p.setProperty("password", args[2]);
    p.setProperty("sslmode", args[3]);
    p.setProperty("prepareThreshold", "1");
    int threads = Integer.parseInt(args[4]);
    long seconds = Long.parseLong(args[5]);
    int rows = Integer.parseInt(args[6]);

    AtomicLong done = new AtomicLong();
    AtomicLong failures = new AtomicLong();
    CountDownLatch connected = new CountDownLatch(threads);
    CountDownLatch start = new CountDownLatch(1);
    long[] deadline = new long[1];
    List<Thread> workers = new ArrayList<>();
    for (int t = 0; t < threads; t++) {
      Thread w = new Thread(() -> {
        try (Connection c = DriverManager.getConnection(url, p);
            PreparedStatement ps =
                c.prepareStatement("SELECT abalance FROM pgbench_accounts WHERE aid = ?")) {
          connected.countDown();
          start.await();
          long n = 0;
          while (System.nanoTime() < deadline[0]) {
            ps.setInt(1, 1 + ThreadLocalRandom.current().nextInt(rows));
            try (ResultSet rs = ps.executeQuery()) {
              if (!rs.next()) throw new AssertionError("no row");
            }
            n++;
          }
          done.addAndGet(n);
        } catch (Exception e) {
          failures.incrementAndGet();
          connected.countDown();
          System.err.println(e);
        }
      });
      workers.add(w);
      w.start();
    }
    connected.await();
    long began = System.nanoTime();
    deadline[0] = began + seconds * 1_000_000_000L;
    start.countDown();
    for (Thread w : workers) w.join();
    double elapsed = (System.nanoTime() - began) / 1e9;
    System.out.printf("transactions=%d seconds=%.3f failures=%d%n", done.get(), elapsed, failures.get());
    if (failures.get() > 0) System.exit(1);
  }
}
