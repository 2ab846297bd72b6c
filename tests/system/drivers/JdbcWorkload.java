// A JDBC workload for the system tests: N threads, each with its own connection, run
// server-prepared statements (prepareThreshold=1: named statements from the first execution)
// and committed transactions, checking every result. Exits non-zero on the first wrong answer.
//
//   java -cp /usr/share/java/postgresql.jar JdbcWorkload.java URL USER PASSWORD THREADS ITERATIONS
import java.sql.Connection;
import java.sql.DriverManager;
import java.sql.PreparedStatement;
import java.sql.ResultSet;
import java.util.ArrayList;
import java.util.List;
import java.util.Properties;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;

public class JdbcWorkload {
  public static void main(String[] args) throws Exception {
    String url = args[0];
    String user = args[1];
    String password = args[2];
    int threads = Integer.parseInt(args[3]);
    int iterations = Integer.parseInt(args[4]);
    ExecutorService pool = Executors.newFixedThreadPool(threads);
    List<Future<?>> futures = new ArrayList<>();
    for (int t = 0; t < threads; t++) {
      final int n = t;
      futures.add(pool.submit(() -> {
        run(url, user, password, n, iterations);
        return null;
      }));
    }
    for (Future<?> f : futures) f.get();
    pool.shutdown();
    System.out.println("ok");
  }

  static void run(String url, String user, String password, int n, int iterations) throws Exception {
    Properties p = new Properties();
    p.setProperty("user", user);
    p.setProperty("password", password);
    p.setProperty("prepareThreshold", "1");
    p.setProperty("sslmode", "disable");
    try (Connection c = DriverManager.getConnection(url, p)) {
      try (PreparedStatement ps = c.prepareStatement("select ?::int * ?::int, ?::text")) {
        for (int i = 0; i < iterations; i++) {
          ps.setInt(1, n);
          ps.setInt(2, i);
          ps.setString(3, "t" + n);
          try (ResultSet rs = ps.executeQuery()) {
            if (!rs.next() || rs.getInt(1) != n * i || !rs.getString(2).equals("t" + n))
              throw new AssertionError("thread " + n + " iteration " + i + ": wrong row");
          }
        }
      }
      c.setAutoCommit(false);
      try (PreparedStatement up =
              c.prepareStatement("insert into kv values (?, ?) on conflict (k) do update set v = excluded.v");
          PreparedStatement get = c.prepareStatement("select v from kv where k = ?")) {
        for (int i = 0; i < iterations; i++) {
          up.setString(1, "jdbc" + n);
          up.setString(2, Integer.toString(i));
          up.executeUpdate();
          c.commit();
          get.setString(1, "jdbc" + n);
          try (ResultSet rs = get.executeQuery()) {
            if (!rs.next() || !rs.getString(1).equals(Integer.toString(i)))
              throw new AssertionError("thread " + n + " iteration " + i + ": lost update");
          }
          c.commit();
        }
      }
    }
  }
}
