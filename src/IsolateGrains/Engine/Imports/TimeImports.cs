using System.Text;
using Wasmtime;

namespace IsolateGrains.Engine.Imports;

/// <summary>
/// Clocks and calendars. Wall-clock time comes from the host's <see cref="TimeProvider"/> (so a host can
/// give sandboxes a fake or frozen clock); the monotonic clock continues from the image it was captured
/// in, so it never runs backwards across snapshots. Every sandbox lives in UTC.
/// </summary>
internal static class TimeImports
{
    /// <summary>Defines the time imports.</summary>
    public static void Define(Linker linker)
    {
        linker.DefineFunction("env", "emscripten_date_now", (Caller caller) =>
            (double)Sandbox.From(caller).Clock.GetUtcNow().ToUnixTimeMilliseconds());
        linker.DefineFunction("env", "emscripten_get_now", (Caller caller) => Sandbox.From(caller).MonotonicNowMs);
        // Resolution in nanoseconds.
        linker.DefineFunction("env", "emscripten_get_now_res", () => 1000.0);
        linker.DefineFunction("env", "_emscripten_get_now_is_monotonic", () => 1);
        linker.DefineFunction("env", "_tzset_js", (Caller caller, int timezone, int daylight, int standardName, int daylightName) =>
        {
            var sandbox = Sandbox.From(caller);
            sandbox.Span(timezone, 4).Clear();
            sandbox.Span(daylight, 4).Clear();
            // Emscripten gives each name 7 bytes including the terminator.
            Encoding.ASCII.GetBytes("UTC\0", sandbox.Span(standardName, 4));
            Encoding.ASCII.GetBytes("UTC\0", sandbox.Span(daylightName, 4));
        });
        linker.DefineFunction("env", "_localtime_js", (Caller caller, long time, int tm) => WriteTm(Sandbox.From(caller), time, tm));
        linker.DefineFunction("env", "_gmtime_js", (Caller caller, long time, int tm) => WriteTm(Sandbox.From(caller), time, tm));
        // strftime is only reached through C locale code the .NET runtime does not use; "nothing fits" is a valid answer.
        linker.DefineFunction("env", "strftime", (int s, int maxSize, int format, int tm) => 0);
    }

    /// <summary>Fills a C <c>struct tm</c> for <paramref name="unixSeconds"/> in UTC.</summary>
    private static void WriteTm(Sandbox sandbox, long unixSeconds, int tm)
    {
        var clamped = Math.Clamp(unixSeconds, DateTimeOffset.MinValue.ToUnixTimeSeconds(), DateTimeOffset.MaxValue.ToUnixTimeSeconds());
        var date = DateTimeOffset.FromUnixTimeSeconds(clamped).UtcDateTime;
        var memory = sandbox.Exports.Memory;
        memory.WriteInt32(tm + 0, date.Second);
        memory.WriteInt32(tm + 4, date.Minute);
        memory.WriteInt32(tm + 8, date.Hour);
        memory.WriteInt32(tm + 12, date.Day);
        memory.WriteInt32(tm + 16, date.Month - 1);
        memory.WriteInt32(tm + 20, date.Year - 1900);
        memory.WriteInt32(tm + 24, (int)date.DayOfWeek);
        memory.WriteInt32(tm + 28, date.DayOfYear - 1);
        memory.WriteInt32(tm + 32, 0); // tm_isdst
        memory.WriteInt32(tm + 36, 0); // tm_gmtoff
    }
}
