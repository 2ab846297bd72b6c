#include "proxy/session_settings.hpp"

#include <gtest/gtest.h>

namespace sluice::proxy {
namespace {

using Params = std::vector<std::pair<std::string, std::string>>;

TEST(SessionSettings, StartupParametersAndOptionsBecomeSettings) {
  Settings s;
  auto error = settings_from_startup({{"user", "app"},
                                      {"database", "db"},
                                      {"application_name", "psql"},
                                      {"_pq_.something", "1"},
                                      {"options", "-c search_path=a\\ b --statement-timeout=5"}},
                                     s);
  ASSERT_FALSE(error) << *error;
  EXPECT_EQ(s.size(), 3u);
  EXPECT_EQ(s["application_name"], "psql");
  EXPECT_EQ(s["search_path"], "a b");
  EXPECT_EQ(s["statement_timeout"], "5");
  EXPECT_EQ(s["APPLICATION_NAME"], "psql");  // names are case-insensitive
}

TEST(SessionSettings, RefusesIdentityChangesAndBadNames) {
  Settings s;
  EXPECT_TRUE(settings_from_startup({{"user", "a"}, {"role", "admin"}}, s));
  EXPECT_TRUE(settings_from_startup({{"user", "a"}, {"options", "-c session_authorization=x"}}, s));
  EXPECT_TRUE(settings_from_startup({{"user", "a"}, {"bad name;", "x"}}, s));
  EXPECT_TRUE(settings_from_startup({{"user", "a"}, {"options", "-x"}}, s));
}

TEST(SessionSettings, SyncSqlSetsDifferencesAndResetsLeftovers) {
  Settings current{{"application_name", "a"}, {"TimeZone", "UTC"}, {"search_path", "x"}};
  Settings wanted{{"application_name", "a"}, {"timezone", "Asia/Tokyo"}, {"DateStyle", "ISO"}};
  EXPECT_EQ(settings_sync_sql(current, wanted),
            "SELECT pg_catalog.set_config(E'DateStyle', E'ISO', false),"
            "pg_catalog.set_config(E'timezone', E'Asia/Tokyo', false);RESET search_path;");
  EXPECT_EQ(settings_sync_sql(wanted, wanted), "");
  EXPECT_EQ(settings_sync_sql({}, {}), "");
}

TEST(SessionSettings, ValuesAreQuotedSafely) {
  Settings wanted{{"application_name", "x'; DROP TABLE t; --\\"}};
  EXPECT_EQ(
      settings_sync_sql({}, wanted),
      "SELECT pg_catalog.set_config(E'application_name', E'x''; DROP TABLE t; --\\\\', false);");
}

// same_settings() decides every borrow: it must agree with == whatever the sizes.
TEST(SessionSettings, SameSettingsAgreesWithEquality) {
  const std::vector<Settings> all = {
      {},
      {{"application_name", "pgbench"}},
      {{"application_name", "psql"}},
      {{"Application_Name", "pgbench"}},
      {{"search_path", "pgbench"}},
      {{"application_name", "pgbench"}, {"timezone", "UTC"}},
      {{"application_name", "pgbench"}, {"timezone", "utc"}},
      {{"application_name", "pgbench"}, {"timezone", "UTC"}, {"work_mem", "4MB"}},
  };
  for (const Settings& a : all) {
    for (const Settings& b : all) EXPECT_EQ(same_settings(a, b), a == b);
    EXPECT_TRUE(same_settings(a, Settings(a)));
  }
}

TEST(SessionSettings, KeyIsStableAndCaseInsensitiveOnNames) {
  Settings a{{"TimeZone", "UTC"}, {"application_name", "x"}};
  Settings b{{"application_name", "x"}, {"timezone", "UTC"}};
  EXPECT_EQ(settings_key(a), settings_key(b));
  Settings c{{"timezone", "utc"}};
  EXPECT_NE(settings_key(a), settings_key(c));
}

}  // namespace
}  // namespace sluice::proxy
