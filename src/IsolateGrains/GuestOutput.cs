namespace IsolateGrains;

/// <summary>Which stream a guest wrote to.</summary>
public enum GuestOutputStream
{
    /// <summary>Standard output (<c>Console.Out</c>).</summary>
    StandardOutput,
    /// <summary>Standard error (<c>Console.Error</c>).</summary>
    StandardError,
}

/// <summary>One line a guest wrote to its console.</summary>
/// <param name="Sandbox">The name of the sandbox that wrote it.</param>
/// <param name="Stream">Standard output or standard error.</param>
/// <param name="Text">The line, without its line break.</param>
public readonly record struct GuestOutput(string Sandbox, GuestOutputStream Stream, string Text)
{
    /// <summary>The default sink: the host's console, each line prefixed with the sandbox's name.</summary>
    public static void WriteToConsole(GuestOutput line)
    {
        var writer = line.Stream == GuestOutputStream.StandardError ? Console.Error : Console.Out;
        writer.WriteLine($"[{line.Sandbox}] {line.Text}");
    }
}
